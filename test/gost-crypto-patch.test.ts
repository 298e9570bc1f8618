// node-gost-crypto 1.0.2's invMod calls an undefined `subtract` in a rare branch: key generation in the
// chaos suite crashed with "ReferenceError: subtract is not defined" (gostSign.js:659). bin/postinstall.js
// mends it; this checks the installed copy, and that the function the mend calls exists in the library.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const file = join(dirname(createRequire(import.meta.url).resolve('node-gost-crypto/package.json')), 'lib/gostSign.js');

test('installed node-gost-crypto calls no undefined subtract in invMod', (t) => {
  const src = readFileSync(file, 'utf8');
  t.false(/\bsubtract\(/.test(src), 'gostSign.js still calls subtract(): run npm install (bin/postinstall.js)');
  t.regex(src, /function sub\(x, y\)/, 'the library defines sub(x, y), which the mend calls');
  t.true(src.includes('return sub(d, m);'));
});
