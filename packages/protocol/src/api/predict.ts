// REST contract of /v1/predict: central inference on one image.
import { Type, type Static } from '@sinclair/typebox';

/** What POST /v1/predict answers. */
export const PredictionViewSchema = Type.Object({
  score: Type.Number(),
  defect: Type.Boolean({ description: 'score >= threshold' }),
  threshold: Type.Number(),
  model: Type.Object({ name: Type.String(), version: Type.String() }),
  latencyMs: Type.Number({ description: 'server time from model selection to score' }),
  preprocessMs: Type.Number({ description: 'decode, resize and normalize' }),
  inferenceMs: Type.Number({ description: 'ONNX run in a worker thread, queueing included' }),
});
/** What POST /v1/predict answers. */
export type PredictionView = Static<typeof PredictionViewSchema>;

/** Query of POST /v1/predict. */
export const PredictQuerySchema = Type.Object({
  model: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 130,
      description:
        'name@version, or name for its newest production version (until stages are managed: its newest version); may be omitted when only one model name is registered',
    }),
  ),
});

/** An error answer: the registry's code and a message that says what was wrong. */
export const ApiErrorSchema = Type.Object({ error: Type.String(), message: Type.String() });
/** An error answer. */
export type ApiError = Static<typeof ApiErrorSchema>;
