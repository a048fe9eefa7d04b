/** Keeps the last lines of a text stream (such as a child's stderr) within a fixed budget. */
export class LineTail {
  readonly #maxLines: number;
  readonly #maxLineChars: number;
  readonly #lines: string[] = [];
  #partial = '';

  /** Keeps at most `maxLines` lines of at most `maxLineChars` characters each. */
  constructor(maxLines = 20, maxLineChars = 500) {
    this.#maxLines = maxLines;
    this.#maxLineChars = maxLineChars;
  }

  /** Adds a chunk of text; lines may be split across chunks. */
  push(text: string): void {
    const pieces = (this.#partial + text).split(/\r?\n|\r/);
    // The last piece is an unfinished line; keep a bounded prefix of it.
    this.#partial = (pieces.pop() ?? '').slice(0, this.#maxLineChars);
    for (const piece of pieces) this.#add(piece);
  }

  /** The kept lines, oldest first, including an unfinished last line. */
  lines(): string[] {
    const all = this.#partial === '' ? [...this.#lines] : [...this.#lines, this.#partial];
    return all.slice(-this.#maxLines);
  }

  /** Forgets everything. */
  clear(): void {
    this.#lines.length = 0;
    this.#partial = '';
  }

  #add(line: string): void {
    if (line.trim() === '') return;
    this.#lines.push(line.slice(0, this.#maxLineChars));
    if (this.#lines.length > this.#maxLines) this.#lines.shift();
  }
}
