// Interop oracle for spec/unit/callback_interop_spec.lua: Tencent's own
// @wecom/crypto (npm) encrypts or decrypts a batch of cases in one process.
//
//   node node_crypto.js encrypt|decrypt CASES.json
//
// Messages and receive ids travel hex-encoded so no byte is reinterpreted on
// the way.  Prints one JSON array, a result per case, in input order.
'use strict';

const fs = require('fs');
const path = require('path');

function loadWecomCrypto() {
  const candidates = [
    process.env.WECOM_NODE_MODULES,
    path.resolve(__dirname, '..', '..', 'build', 'node', 'node_modules'),
  ].filter(Boolean);
  for (const dir of candidates) {
    try {
      return require(path.join(dir, '@wecom', 'crypto'));
    } catch (e) {
      // try the next location
    }
  }
  process.stderr.write('node_crypto.js: @wecom/crypto not found (run `make node-deps`)\n');
  process.exit(2);
  return null;
}

const wecom = loadWecomCrypto();
const [mode, file] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(file, 'utf8'));

const fromHex = (h) => Buffer.from(h, 'hex').toString('utf8');
const toHex = (s) => Buffer.from(s, 'utf8').toString('hex');

function encryptCase(c) {
  const random = c.random_hex ? Buffer.from(c.random_hex, 'hex') : undefined;
  const encrypt = wecom.encrypt(c.aes_key, fromHex(c.message_hex), fromHex(c.id_hex), random);
  return {
    encrypt,
    signature: wecom.getSignature(c.token, c.timestamp, c.nonce, encrypt),
  };
}

function decryptCase(c) {
  const expected = wecom.getSignature(c.token, c.timestamp, c.nonce, c.encrypt);
  const { message, id } = wecom.decrypt(c.aes_key, c.encrypt);
  return {
    signature_ok: expected === c.signature,
    message_hex: toHex(message),
    id_hex: toHex(id),
  };
}

let run;
if (mode === 'encrypt') {
  run = encryptCase;
} else if (mode === 'decrypt') {
  run = decryptCase;
} else {
  process.stderr.write('usage: node_crypto.js encrypt|decrypt CASES.json\n');
  process.exit(2);
}
process.stdout.write(JSON.stringify(cases.map(run)));
