// Callback benchmark, node side: Tencent's @wecom/crypto verifying
// (getSignature + compare) and decrypting the messages that
// callback_bench.lua gen wrote.  No XML parsing: the bar compares our
// verify + decrypt + parse against its verify + decrypt alone.
//
//   node node_crypto_bench.js FILE [ROUNDS]   -> "<messages per second> <checksum>"
'use strict';

const fs = require('fs');

const wecom = require('./node_wecom_crypto')('node_crypto_bench.js');
const [file, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg || 5);
const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
const [token, aesKey, receiveId] = lines[0].split(' ');
const messages = lines.slice(1).map((l) => l.split(' '));

let best = Infinity;
let checksum = 0;
for (let round = 0; round <= rounds; round += 1) { // round 0 warms up the JIT
  let sum = 0;
  const t0 = process.hrtime.bigint();
  for (const [signature, timestamp, nonce, encrypt] of messages) {
    if (wecom.getSignature(token, timestamp, nonce, encrypt) !== signature) {
      throw new Error('signature mismatch');
    }
    const { message, id } = wecom.decrypt(aesKey, encrypt);
    if (id !== receiveId) {
      throw new Error('receive id mismatch');
    }
    sum += message.length > 0 ? 1 : 0;
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  if (round > 0 && elapsed < best) {
    best = elapsed;
  }
  checksum = sum;
}
process.stdout.write(`${Math.round(messages.length / best)} ${checksum}\n`);
