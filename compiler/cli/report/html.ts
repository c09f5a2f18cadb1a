/**
 * HTML by a tagged template that escapes every interpolated value: bundle strings (model, node,
 * weight and kernel names, WGSL) are untrusted, so escaping is the default and only markup this
 * code built itself (SafeHtml) goes in as is. Values never land in attribute names, URLs, styles
 * or scripts; in text and quoted attribute values escaping &, <, >, " and ' is enough.
 */

export class SafeHtml {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

/** html`<td>${name}</td>`: strings and numbers escaped, SafeHtml and arrays of either joined in. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let markup = strings[0]!;
  values.forEach((value, i) => {
    markup += render(value) + strings[i + 1]!;
  });
  return new SafeHtml(markup);
}

/** Markup built by this compiler's own SVG writers (which escape the text they embed). */
export function trustedMarkup(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
