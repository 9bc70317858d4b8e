//! `recflow export --format cloudformation`: an exported definition as an
//! `AWS::StepFunctions::StateMachine` with the role its task calls need.
//!
//! The template defines one parameter, `StateMachineName`, and two resources: `StateMachineRole`
//! (`AWS::IAM::Role` that `states.amazonaws.com` assumes, with the inline policy
//! [`super::iam::policy`] derives for the exported definition, [`super::iam::Caller::StepFunctions`])
//! and `StateMachine` (`Definition` as a JSON object, `RoleArn` from the role). Property names
//! follow the CloudFormation resource reference for `AWS::StepFunctions::StateMachine`
//! (`StateMachineName`, `StateMachineType`, `Definition`, `RoleArn`) and `AWS::IAM::Role`
//! (`AssumeRolePolicyDocument`, `Policies` of `PolicyName` and `PolicyDocument`).

use serde_json::{Value, json};

use super::ExportError;
use super::iam::{Caller, policy};

/// The CloudFormation template (JSON) deploying `exported` (a definition already rewritten for
/// Step Functions) as a STANDARD state machine named by the `StateMachineName` parameter, whose
/// default is `default_name`.
pub fn template(exported: &Value, default_name: &str) -> Result<Value, ExportError> {
    let document = policy(&[exported], Caller::StepFunctions)?;
    Ok(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("recflow workflow {default_name} on AWS Step Functions (recflow export --format cloudformation)"),
        "Parameters": {
            "StateMachineName": {"Type": "String", "Default": default_name, "Description": "Name of the state machine"}
        },
        "Resources": {
            "StateMachineRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole"
                        }]
                    },
                    "Policies": [{"PolicyName": "workflow-tasks", "PolicyDocument": document}]
                }
            },
            "StateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": {"Ref": "StateMachineName"},
                    "StateMachineType": "STANDARD",
                    "Definition": exported,
                    "RoleArn": {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
                }
            }
        },
        "Outputs": {
            "StateMachineArn": {"Value": {"Ref": "StateMachine"}}
        }
    }))
}
