// Entry of the trainer process: reads a job spec, trains with the trainer of
// `linesight model train`, scores champion and challenger on the held-out set
// and reports over the IPC channel. Never imported by the cloud itself.
import { readFile, writeFile } from 'node:fs/promises';
import { describeError, isLinesightError } from '@linesight/protocol';
import { evaluateModel, trainDefectModel, type TrainingSample } from '@linesight/model';
import { verdictAgreement } from './retrain-rollout-gates.ts';
import { heldOutMetrics, type ChildMessage, type TrainSpec } from './train-protocol.ts';

const send = (message: ChildMessage): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(message, () => resolve());
  });

async function samplesOf(list: TrainSpec['train']): Promise<TrainingSample[]> {
  return Promise.all(
    list.map(async (s) => ({
      image: await readFile(s.path),
      label: s.label,
      className: s.className,
      ...(s.recent === true ? { recent: true } : {}),
    })),
  );
}

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (specPath === undefined) throw new Error('usage: train-child <spec.json>');
  const spec = JSON.parse(await readFile(specPath, 'utf8')) as TrainSpec;
  const train = await samplesOf(spec.train);
  const holdout = await samplesOf(spec.holdout);
  const trained = await trainDefectModel(train, {
    seed: spec.options.seed,
    mode: 'auto',
    size: spec.options.size,
    epochs: spec.options.epochs,
    members: spec.options.members,
    name: spec.options.name,
    onProgress: (p) => {
      void send({ type: 'progress', progress: p });
    },
  });
  await writeFile(spec.outPath, trained.onnx);
  let done = 0;
  const total = holdout.length * 2;
  const onProgress = () => {
    done++;
    if (done % 10 === 0 || done === total)
      void send({ type: 'progress', progress: { step: 'compare', done, total } });
  };
  const championScores: number[] = [];
  const challengerScores: number[] = [];
  const champion = await evaluateModel(await readFile(spec.championPath), holdout, {
    onProgress,
    onScore: (i, score) => (championScores[i] = score),
  });
  const challenger = await evaluateModel(trained.onnx, holdout, {
    onProgress,
    onScore: (i, score) => (challengerScores[i] = score),
  });
  await send({
    type: 'done',
    champion: heldOutMetrics(champion),
    challenger: heldOutMetrics(challenger),
    agreement: verdictAgreement(
      championScores,
      champion.threshold,
      challengerScores,
      challenger.threshold,
    ),
    trainingMs: trained.trainingMs,
    datasetFingerprint: trained.contract.datasetFingerprint ?? '',
    mode: trained.mode,
  });
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await send({
      type: 'error',
      code: isLinesightError(err) ? err.code : 'ERR_TRAINING',
      message: describeError(err),
    });
    process.exit(1);
  },
);
