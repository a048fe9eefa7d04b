/** One labelled training image. */
export interface TrainingSample {
  /** Encoded image bytes (JPEG, PNG, ...). */
  image: Buffer;
  label: 'good' | 'defect';
  /** Finer class, e.g. 'good', 'scratch', 'spot'; defect classes are evaluated separately. */
  className: string;
}
