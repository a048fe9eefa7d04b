// scheme://user:password@ or scheme://user@ (a token in the user part).
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/**
 * Replaces the user-info of every URL in `text` (`rtsp://admin:secret@cam/...`)
 * with `***`, so camera commands and URLs can go into descriptions, events and logs.
 */
export function redactCredentials(text: string): string {
  return text.replace(URL_USERINFO, '$1***@');
}
