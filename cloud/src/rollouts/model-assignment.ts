import type { ModelAssignment } from '@linesight/protocol';
import type { ModelVersion } from '../registry/model-registry.ts';

/** The URL path (on the cloud) of a model version's artifact, as the model routes serve it. */
export function artifactPath(name: string, version: string): string {
  return `/v1/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/artifact`;
}

/** What a device's desired state says to run: the signed manifest and where to fetch the artifact. */
export function assignmentOf(
  model: Pick<ModelVersion, 'name' | 'version' | 'signed'>,
): ModelAssignment {
  return { signed: model.signed, artifactUrl: artifactPath(model.name, model.version) };
}
