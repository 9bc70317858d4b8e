// The same counter loop on aws-local-stepfunctions (a Node ASL interpreter), for the side-by-side
// figure in the README. Not part of the build or the tests:
//   mkdir /tmp/alsf && cd /tmp/alsf && npm install aws-local-stepfunctions@3
//   cp <repo>/benches/compare/aws-local-stepfunctions.mjs . && node aws-local-stepfunctions.mjs <repo>/benches/counter.asl.json 5000
import { StateMachine } from 'aws-local-stepfunctions';
import fs from 'fs';

const definition = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const n = Number(process.argv[3] || 5000);
const machine = new StateMachine(definition);

async function once(n) {
  const start = process.hrtime.bigint();
  const output = await machine.run({ i: 0, n }).result;
  return { output, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

await once(1000); // warm up
const { output, seconds } = await once(n);
const transitions = 2 * n + 1;
console.log(`aws-local-stepfunctions: ${(transitions / seconds).toFixed(0)} transitions/s (${transitions} in ${seconds.toFixed(3)} s) -> ${JSON.stringify(output)}`);
