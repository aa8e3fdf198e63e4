/**
 * GET /docs: the OpenAPI document as one self-contained HTML page (no scripts, no CDN): every
 * operation with its parameters, request schema and answers, then the agent types' payloads.
 */
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const json = (v: unknown) => `<pre>${escape(JSON.stringify(v, null, 2))}</pre>`;

type Doc = {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, { summary?: string; parameters?: Array<{ name: string; in: string; required?: boolean }>; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { description: string }>; security?: unknown[] }>>;
  components: { schemas: Record<string, unknown> };
};

export function docsPage(document: Record<string, unknown>): string {
  const doc = document as unknown as Doc;
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, o]) => {
      const params = (o.parameters ?? []).map((p) => `<code>${escape(p.name)}</code> (${p.in}${p.required ? ', required' : ''})`).join(', ');
      const body = o.requestBody ? Object.values(o.requestBody.content)[0]?.schema : undefined;
      const answers = Object.entries(o.responses).map(([status, r]) => `<code>${status}</code> ${escape(r.description)}`).join(' · ');
      return `<section id="${escape(`${method}-${path}`)}"><h3><span class="m">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
<p>${escape(o.summary ?? '')}${o.security?.length === 0 ? ' (no API key needed)' : ''}</p>
${params ? `<p>Parameters: ${params}</p>` : ''}${body ? `<details><summary>Request body</summary>${json(body)}</details>` : ''}<p>Answers: ${answers}</p></section>`;
    }),
  );
  const payloads = Object.entries(doc.components.schemas)
    .filter(([name]) => name.endsWith('Payload'))
    .map(([name, schema]) => `<details><summary>${escape(name)}</summary>${json(schema)}</details>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(doc.info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h3{margin:1.6em 0 .2em}.m{display:inline-block;min-width:4.5em;font-size:.8em;padding:.1em .4em;border-radius:4px;background:#234;color:#fff;text-align:center}
pre{background:#f5f5f5;padding:.8em;overflow:auto;font-size:13px}code{font-size:.95em}</style></head><body>
<h1>${escape(doc.info.title)} API <small>${escape(doc.info.version)}</small></h1>
<p>${escape(doc.info.description ?? '')} The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Send an API key as <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key</code>.</p>
<h2>Operations</h2>${ops.join('\n')}
<h2>Agent types: payloads</h2>${payloads.join('\n')}
</body></html>`;
}
