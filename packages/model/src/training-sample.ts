/** One labelled training image. */
export interface TrainingSample {
  /** Encoded image bytes (JPEG, PNG, ...). */
  image: Buffer;
  label: 'good' | 'defect';
  /** Finer class, e.g. 'good', 'scratch', 'spot'; defect classes are evaluated separately. */
  className: string;
  /**
   * Labelled on the line as it is now, e.g. a retraining's labelled samples
   * beside the parent model's training data: the validation split holds a
   * share of them of their own (`recentValidationShare`), and the threshold
   * is chosen on those alone when they include both labels, so that it fits
   * the line the model will run on rather than the older data.
   */
  recent?: boolean;
  /**
   * The defect mask, encoded (white = defect pixels; the image's own size or
   * any size, resized with the image's `fill`): supervised training learns
   * the model's map from the masks of its defect images when at least a few
   * have one (see `map-head.ts`).
   */
  mask?: Uint8Array;
}
