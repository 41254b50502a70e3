// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints its
// diagnostics as JSON lines: {"severity": "error"|"warning"|"info"|"hint", "code", "path",
// "message"}. Exit status 1 when the document did not parse or has an error.
import { Parser, fromFile } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];
const { document, diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
for (const d of diagnostics) {
  console.log(JSON.stringify({
    severity: SEVERITY[d.severity], code: d.code, path: d.path.join('.'), message: d.message,
  }));
}
process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
