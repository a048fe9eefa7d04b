// REST contract of /v1/models: the model registry.
import { Type, type Static } from '@sinclair/typebox';

/** A model version as the registry shows it. */
export const ModelViewSchema = Type.Object({
  name: Type.String(),
  version: Type.String(),
  sha256: Type.String(),
  sizeBytes: Type.Integer(),
  stage: Type.String(),
  parentVersion: Type.Union([Type.String(), Type.Null()]),
  approvedBy: Type.Union([Type.String(), Type.Null()]),
  approvedAt: Type.Union([Type.String(), Type.Null()]),
  datasetFingerprint: Type.Union([Type.String(), Type.Null()]),
  training: Type.Unknown(),
  threshold: Type.Number(),
  kind: Type.String(),
  inputSpec: Type.Unknown(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  manifest: Type.Unknown(),
});
/** A model version as the registry lists it. */
export type ModelView = Static<typeof ModelViewSchema>;

/** Path parameters of /v1/models/:name/:version. */
export const ModelParamsSchema = Type.Object({ name: Type.String(), version: Type.String() });

/** Body of POST /v1/models/:name/:version/stage. */
export const StageModelBodySchema = Type.Object(
  { stage: Type.String() },
  { additionalProperties: false },
);
