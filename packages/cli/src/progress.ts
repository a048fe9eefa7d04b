let lastPrintMs = 0;

/**
 * Shows progress on stderr: on a terminal one line rewritten in place; in
 * logs and CI one line every few seconds. An empty text ends the line.
 */
export function progressLine(text: string, everyMs = 3000): void {
  if (process.stderr.isTTY) {
    process.stderr.write(text === '' ? '\n' : `\r\x1b[2K${text}`);
    return;
  }
  const now = Date.now();
  if (text !== '' && now - lastPrintMs >= everyMs) {
    lastPrintMs = now;
    process.stderr.write(`${text}\n`);
  }
}
