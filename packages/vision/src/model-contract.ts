import { Type, type Static } from '@sinclair/typebox';
import {
  InputSpecSchema,
  ModelOutputsSchema,
  WindowReferenceSchema,
  assertSchema,
  LinesightError,
} from '@linesight/protocol';

/** The ONNX metadata_props key that holds a model's Linesight contract (JSON). */
export const CONTRACT_METADATA_KEY = 'linesight.contract';

/** A histogram over fixed bin edges, used for drift reference profiles. */
export const HistogramSchema = Type.Object(
  {
    edges: Type.Array(Type.Number(), { minItems: 2 }),
    counts: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
/** A histogram. */
export type Histogram = Static<typeof HistogramSchema>;

/**
 * What a model promises about itself, stored inside the .onnx file so that
 * preprocessing at inference is exactly the preprocessing used in training.
 */
export const ModelContractSchema = Type.Object(
  {
    schema: Type.Literal('linesight.model/v1'),
    kind: Type.String({ description: 'how it was built, e.g. pyramid-cell-classifier' }),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'model name given at training' }),
    ),
    inputSpec: InputSpecSchema,
    outputs: ModelOutputsSchema,
    threshold: Type.Number({ description: 'score at or above which a frame is a defect' }),
    mapScale: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        description:
          'the map value a heatmap shows at full heat (1 for a map of defect scores in 0..1); absent: the map is in the units of the score',
      }),
    ),
    training: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    datasetFingerprint: Type.Optional(Type.String()),
    trainingImages: Type.Optional(
      Type.Array(Type.String({ pattern: '^[0-9a-f]{16}$' }), {
        description:
          'sorted 16-hex-digit SHA-256 prefixes of every image the trainer was given, so an evaluation can name the images it shares with training',
      }),
    ),
    referenceProfile: Type.Optional(
      Type.Object(
        {
          score: HistogramSchema,
          meanIntensity: Type.Optional(HistogramSchema),
          contrast: Type.Optional(HistogramSchema),
          window: Type.Optional(WindowReferenceSchema),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true },
);
/** A model contract. */
export type ModelContract = Static<typeof ModelContractSchema>;

/** Validates a contract parsed from JSON; throws ERR_MODEL_CONTRACT. */
export function parseModelContract(json: string): ModelContract {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new LinesightError('ERR_MODEL_CONTRACT', `model contract is not JSON`, { cause });
  }
  try {
    const contract = assertSchema(ModelContractSchema, value, 'model contract');
    if (
      contract.inputSpec.mean.length !== contract.inputSpec.channels ||
      contract.inputSpec.std.length !== contract.inputSpec.channels
    ) {
      throw new LinesightError(
        'ERR_MODEL_CONTRACT',
        'model contract: mean and std need one value per channel',
      );
    }
    return contract;
  } catch (cause) {
    if (cause instanceof LinesightError && cause.code === 'ERR_MODEL_CONTRACT') throw cause;
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `model contract is invalid: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
