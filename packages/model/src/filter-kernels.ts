/** One square convolution kernel of the filter bank, row-major. */
export interface FilterKernel {
  name: string;
  /** Side length in pixels (odd). */
  size: number;
  /** size x size weights, row-major; what the ONNX Conv holds. */
  weights: Float32Array;
  /**
   * The same kernel as a sum of outer products `vertical ⊗ horizontal`, when
   * it has a short one: the reference forward pass then convolves in two cheap
   * 1-D passes instead of one dense 2-D pass.
   */
  separable?: SeparableTerm[];
}

/** One rank-1 term of a kernel: weight(y, x) = vertical[y] * horizontal[x]. */
export interface SeparableTerm {
  vertical: Float32Array;
  horizontal: Float32Array;
}

/** Side length of the default filter bank's kernels. */
export const DEFAULT_KERNEL_SIZE = 9;

/**
 * The default bank: edges (Sobel x/y), blobs (Laplacian, two difference-of-box
 * scales) and thin lines at four angles. Every kernel sums to (about) zero, so
 * responses ignore brightness offsets; all share one size so they form one Conv.
 */
export function defaultFilterBank(size: number = DEFAULT_KERNEL_SIZE): FilterKernel[] {
  if (!Number.isInteger(size) || size < 7 || size % 2 === 0)
    throw new RangeError(`kernel size must be an odd integer >= 7, got ${size}`);
  return [
    embed('laplacian', size, 3, [0, 1, 0, 1, -4, 1, 0, 1, 0]),
    embed('sobel-x', size, 3, [-1, 0, 1, -2, 0, 2, -1, 0, 1]),
    embed('sobel-y', size, 3, [-1, -2, -1, 0, 0, 0, 1, 2, 1]),
    differenceOfBoxes('dob-1-5', size, 1, 5),
    differenceOfBoxes(`dob-3-${size}`, size, 3, size),
    straightLineDetector('line-0', size, 'horizontal'),
    diagonalLineDetector('line-45', size, 45),
    straightLineDetector('line-90', size, 'vertical'),
    diagonalLineDetector('line-135', size, 135),
  ];
}

function embed(name: string, size: number, inner: number, values: number[]): FilterKernel {
  const weights = new Float32Array(size * size);
  const offset = (size - inner) / 2;
  for (let y = 0; y < inner; y++) {
    for (let x = 0; x < inner; x++)
      weights[(y + offset) * size + x + offset] = values[y * inner + x] as number;
  }
  return { name, size, weights };
}

/** Builds a kernel from rank-1 terms; the dense weights are their sum. */
function fromTerms(name: string, size: number, terms: SeparableTerm[]): FilterKernel {
  const dense = new Float64Array(size * size);
  for (const { vertical, horizontal } of terms) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++)
        dense[y * size + x] =
          (dense[y * size + x] as number) + (vertical[y] as number) * (horizontal[x] as number);
    }
  }
  return { name, size, weights: Float32Array.from(dense), separable: terms };
}

/** A centred box of `width` ones in a `size` vector, times `value`. */
function centredBox(size: number, width: number, value: number): Float32Array {
  const out = new Float32Array(size);
  const start = (size - width) / 2;
  for (let i = start; i < start + width; i++) out[i] = value;
  return out;
}

/** Mean of the centre `inner` box minus mean of the centre `outer` box. */
function differenceOfBoxes(name: string, size: number, inner: number, outer: number): FilterKernel {
  return fromTerms(name, size, [
    {
      vertical: centredBox(size, inner, 1 / inner),
      horizontal: centredBox(size, inner, 1 / inner),
    },
    {
      vertical: centredBox(size, outer, -1 / outer),
      horizontal: centredBox(size, outer, 1 / outer),
    },
  ]);
}

/**
 * A ridge detector along an axis: mean of the centre line minus mean of the
 * two parallel lines two pixels to either side.
 */
function straightLineDetector(
  name: string,
  size: number,
  axis: 'horizontal' | 'vertical',
): FilterKernel {
  const half = (size - 1) / 2;
  const profile = new Float32Array(size);
  profile[half] = 1;
  profile[half - 2] = -0.5;
  profile[half + 2] = -0.5;
  const along = new Float32Array(size).fill(1 / size);
  return fromTerms(name, size, [
    axis === 'horizontal'
      ? { vertical: profile, horizontal: along }
      : { vertical: along, horizontal: profile },
  ]);
}

/**
 * A ridge detector on a diagonal: mean along a one-pixel line through the
 * centre at `degrees` minus mean of the two parallel bands about two pixels away.
 */
function diagonalLineDetector(name: string, size: number, degrees: number): FilterKernel {
  const half = (size - 1) / 2;
  const theta = (degrees * Math.PI) / 180;
  const ux = Math.cos(theta);
  const uy = -Math.sin(theta);
  const role = new Int8Array(size * size);
  let onLine = 0;
  let beside = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - half;
      const dy = y - half;
      const along = dx * ux + dy * uy;
      const across = Math.abs(-dx * uy + dy * ux);
      if (Math.abs(along) > half) continue;
      if (across < 0.5) {
        role[y * size + x] = 1;
        onLine++;
      } else if (across >= 1.5 && across < 2.5) {
        role[y * size + x] = -1;
        beside++;
      }
    }
  }
  const weights = new Float32Array(size * size);
  for (let i = 0; i < role.length; i++) {
    if (role[i] === 1) weights[i] = 1 / onLine;
    if (role[i] === -1) weights[i] = -1 / beside;
  }
  return { name, size, weights };
}
