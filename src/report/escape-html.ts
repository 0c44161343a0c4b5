const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text from a report (paths, routes, stack frames, pool names: the app's data) as HTML text or a
 * quoted attribute value. Everything from a report goes through here before it reaches the page.
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
