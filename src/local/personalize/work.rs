//! The real work behind the jobs, done through the recommender: import CSV into the dataset's
//! interactions file, train a model, run batch inference or batch segments. Runs on a blocking
//! thread from a snapshot taken under the state lock; returns the failure reason on failure.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::local::recommender::filter::ItemFilter;
use crate::local::recommender::{self, Dataset, Model, Recipe};

use crate::local::s3::BucketName;
use crate::local::s3::objects::{self, StoredObject};

use super::Shared;
use super::arn::S3Path;
use super::filters::FilterSource;
use super::store::{Kind, State, write_atomically};

pub enum Job {
    Import {
        files: Result<Vec<StoredObject>, String>,
        /// The dataset's schema fields, which the CSV must satisfy.
        schema: Vec<super::schema::Field>,
        location: String,
        target: PathBuf,
        interactions: bool,
        full: bool,
        lock: Arc<Mutex<()>>,
    },
    Train {
        interactions: PathBuf,
        recipe_arn: String,
        model: PathBuf,
    },
    Batch {
        model: PathBuf,
        inputs: Result<Vec<StoredObject>, String>,
        input_path: String,
        output: BatchOutput,
        num_results: usize,
        segment: bool,
        /// The job's filter (`filterArn`), or why it cannot be used.
        filter: Option<Result<FilterSource, String>>,
    },
}

/// Where a batch job writes: `<prefix><input file name>.out` in `bucket`, for each input file.
pub struct BatchOutput {
    s3_root: PathBuf,
    bucket: BucketName,
    /// The output path's key, ending in `/` unless empty.
    prefix: String,
}

impl BatchOutput {
    fn new(s3_root: PathBuf, destination: &S3Path) -> Option<BatchOutput> {
        let bucket = BucketName::parse(&destination.bucket).ok()?;
        let mut prefix = destination.key.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Some(BatchOutput { s3_root, bucket, prefix })
    }
}

/// Where a dataset's imported data lives: `<personalize>/datasets/<group>/<TYPE>/`, one CSV per
/// import job (`<job name>.csv`). A job that runs again after a crash rewrites its own file, so
/// an INCREMENTAL import is never applied twice; a FULL import removes the other jobs' files.
pub fn dataset_dir(shared: &Shared, dataset_arn: &str) -> PathBuf {
    let mut parts = dataset_arn.rsplit('/');
    let kind = parts.next().unwrap_or("UNKNOWN");
    let group = parts.next().unwrap_or("unknown");
    shared.personalize_dir().join("datasets").join(group).join(kind)
}

/// Where a solution version's model lives: `<personalize>/models/<solution>/<version id>.model`.
pub fn model_file(shared: &Shared, version_arn: &str) -> PathBuf {
    let mut parts = version_arn.rsplit('/');
    let id = parts.next().unwrap_or("unknown");
    let solution = parts.next().unwrap_or("unknown");
    shared.personalize_dir().join("models").join(solution).join(format!("{id}.model"))
}

/// The job to run for `arn`, or None if it is not a job with work (or is gone).
pub fn plan(shared: &Shared, state: &State, arn: &str) -> Option<Job> {
    let record = state.get(arn)?;
    let str_at = |path: &[&str]| {
        let mut value = serde_json::Value::Object(record.fields.clone());
        for key in path {
            value = value.get(*key)?.clone();
        }
        value.as_str().map(str::to_string)
    };
    match record.kind {
        Kind::DatasetImportJob => {
            let dataset = record.field_str("datasetArn")?.to_string();
            let location = str_at(&["dataSource", "dataLocation"])?;
            let schema_text = state
                .get(&dataset)
                .and_then(|d| d.field_str("schemaArn"))
                .and_then(|arn| state.get(arn))
                .and_then(|schema| schema.field_str("schema"))?;
            Some(Job::Import {
                files: list_files(shared, &location),
                // CreateSchema refused what does not parse.
                schema: super::schema::parse(schema_text).ok()?,
                location,
                target: dataset_dir(shared, &dataset).join(format!("{}.csv", record.name)),
                interactions: dataset.ends_with("/INTERACTIONS"),
                full: record.field_str("importMode") != Some("INCREMENTAL"),
                lock: Arc::clone(&shared.import_lock),
            })
        }
        Kind::SolutionVersion => {
            let group = record.field_str("datasetGroupArn")?;
            let interactions_dataset =
                format!("{}/INTERACTIONS", group.replacen(":dataset-group/", ":dataset/", 1));
            Some(Job::Train {
                interactions: dataset_dir(shared, &interactions_dataset),
                recipe_arn: record.field_str("recipeArn")?.to_string(),
                model: model_file(shared, arn),
            })
        }
        Kind::BatchInferenceJob | Kind::BatchSegmentJob => {
            let input_path = str_at(&["jobInput", "s3DataSource", "path"])?;
            let output_path = str_at(&["jobOutput", "s3DataDestination", "path"])?;
            let output = BatchOutput::new(shared.s3_dir(), &S3Path::parse(&output_path).ok()?)?;
            Some(Job::Batch {
                model: model_file(shared, record.field_str("solutionVersionArn")?),
                inputs: list_files(shared, &input_path),
                input_path,
                output,
                num_results: record.fields.get("numResults").and_then(|v| v.as_u64()).unwrap_or(25) as usize,
                segment: record.kind == Kind::BatchSegmentJob,
                filter: record.field_str("filterArn").map(|arn| {
                    state
                        .get(arn)
                        .and_then(|filter| FilterSource::of(shared, filter))
                        .ok_or_else(|| format!("The filter {arn} does not exist."))
                }),
            })
        }
        _ => None,
    }
}

/// The objects an S3 location names: the object itself, or for a key ending in `/` (or an
/// empty one) every object whose key starts with it, in key order.
fn list_files(shared: &Shared, location: &str) -> Result<Vec<StoredObject>, String> {
    let s3 = S3Path::parse(location).map_err(|e| e.to_string())?;
    let bucket = BucketName::parse(&s3.bucket).map_err(|e| e.to_string())?;
    let missing = || format!("Input file {location} does not exist or is not readable.");
    if s3.is_prefix() {
        let mut files = objects::list(&shared.s3_dir(), &bucket, &s3.key).map_err(|_| missing())?;
        // Folder markers (`in/`, zero bytes) are not data files.
        files.retain(|o| !o.key.ends_with('/'));
        if files.is_empty() {
            return Err(format!("No files found under {location}."));
        }
        Ok(files)
    } else {
        // One object: its own file, not a listing of the bucket.
        let path = objects::object_path(&shared.s3_dir(), &bucket, &s3.key);
        let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file()).ok_or_else(missing)?;
        let last_modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        Ok(vec![StoredObject { key: s3.key, path, size: meta.len(), last_modified }])
    }
}

impl Job {
    pub fn run(self) -> Result<(), String> {
        match self {
            Job::Import { files, schema, location, target, interactions, full, lock } => {
                let files = files?;
                super::schema::check_csv(&schema, &files)?;
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                import(files, &location, &target, interactions, full)
            }
            Job::Train { interactions, recipe_arn, model } => train(&interactions, &recipe_arn, &model),
            Job::Batch { model, inputs, input_path, output, num_results, segment, filter } => {
                // Personalize writes into the bucket it is given; it never creates one.
                if !output.bucket.dir(&output.s3_root).is_dir() {
                    return Err(format!(
                        "Cannot write the output: the bucket s3://{}/ does not exist. Create it, or give a jobOutput path in an existing bucket.",
                        output.bucket.as_str()
                    ));
                }
                let filter = filter.transpose()?.map(|source| source.load()).transpose()?;
                batch(&model, inputs?, &input_path, &output, num_results, segment, filter.as_ref())
            }
        }
    }
}

fn import(
    files: Vec<StoredObject>,
    location: &str,
    target: &Path,
    interactions: bool,
    full: bool,
) -> Result<(), String> {
    let internal = |e: std::io::Error| format!("internal error: cannot store the data: {e}");
    let dir = target.parent().ok_or_else(|| "internal error: no dataset folder".to_string())?;
    std::fs::create_dir_all(dir).map_err(internal)?;
    let open = |file: &Path| {
        File::open(file).map(BufReader::new).map_err(|e| format!("Cannot read {location}: {e}"))
    };
    if interactions {
        // Held interned (ids as u32), so a 2-million-row import stays small; a bad row fails the
        // job as a whole.
        let mut data = Dataset::new();
        for file in &files {
            data.append_csv(open(&file.path)?).map_err(|e| format!("{}: {e}", file.file_name()))?;
        }
        crate::atomic_file::write_atomic_with(target, crate::atomic_file::Durability::Fsync, |out| {
            data.write_csv(out)
        })
        .map_err(internal)?;
    } else {
        // Item and user metadata are kept verbatim (the recommender trains on interactions
        // only), with one header row.
        let mut bytes = Vec::new();
        for file in &files {
            let skip = usize::from(!bytes.is_empty());
            for line in open(&file.path)?.lines().skip(skip) {
                bytes.extend_from_slice(line.map_err(|e| format!("Cannot read {location}: {e}"))?.as_bytes());
                bytes.push(b'\n');
            }
        }
        write_atomically(target, &bytes).map_err(internal)?;
    }
    if full {
        for other in stored_files(dir).map_err(internal)? {
            if other != target {
                std::fs::remove_file(&other).map_err(internal)?;
            }
        }
    }
    Ok(())
}

/// The data files of a dataset, in name order.
pub(super) fn stored_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                let visible = path.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.'));
                if visible && path.extension().is_some_and(|e| e == "csv") {
                    files.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    files.sort();
    Ok(files)
}

fn train(interactions: &Path, recipe_arn: &str, model_path: &Path) -> Result<(), String> {
    let recipe = Recipe::from_arn(recipe_arn)
        .ok_or_else(|| format!("The recipe {recipe_arn} is not supported by the local emulator."))?;
    let files =
        stored_files(interactions).map_err(|e| format!("internal error: stored interactions: {e}"))?;
    if files.is_empty() {
        return Err("The dataset group has no imported interactions data.".to_string());
    }
    let mut data = Dataset::new();
    for file in &files {
        let reader = File::open(file).map(BufReader::new).map_err(|e| format!("internal error: {e}"))?;
        data.append_csv(reader).map_err(|e| format!("internal error: stored interactions: {e}"))?;
    }
    let model = recommender::train_dataset(recipe, &data).map_err(|e| e.to_string())?;
    if let Some(dir) = model_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("internal error: {e}"))?;
    }
    // `save` replaces the file atomically.
    model.save(model_path).map_err(|e| format!("internal error: cannot save the model: {e}"))
}

fn batch(
    model_path: &Path,
    inputs: Vec<StoredObject>,
    input_path: &str,
    output: &BatchOutput,
    num_results: usize,
    segment: bool,
    filter: Option<&ItemFilter>,
) -> Result<(), String> {
    let model = Model::load(model_path).map_err(|e| format!("internal error: cannot load the model: {e}"))?;
    for input in inputs {
        let name = input.file_name();
        let reader =
            BufReader::new(File::open(&input.path).map_err(|e| format!("Cannot read {input_path}: {e}"))?);
        let key = format!("{}{name}.out", output.prefix);
        let write =
            crate::local::s3::write_object_with(&output.s3_root, &output.bucket, &key, |writer| {
                match (segment, filter) {
                    (true, _) => {
                        recommender::run_batch_segment(&model, reader, writer, num_results).map(drop)
                    }
                    (false, Some(filter)) => {
                        recommender::run_batch_filtered(&model, reader, writer, num_results, filter).map(drop)
                    }
                    (false, None) => recommender::run_batch(&model, reader, writer, num_results).map(drop),
                }
            });
        if let Err(e) = write {
            return Err(format!("Batch job failed on {name}: {e}"));
        }
    }
    Ok(())
}
