// The Node.js contestant of bench/callback_endpoint.lua: an http server
// doing what a WeCom callback endpoint built on Tencent's @wecom/crypto does
// for each POST: read the body, take Encrypt out of the envelope, verify the
// signature (getSignature + compare), decrypt, check the receive id, answer
// 200 with an empty body (403 / 400 otherwise).
//
//   node callback_endpoint_node.js MESSAGES_FILE PORT
'use strict';

const fs = require('fs');
const http = require('http');

const wecom = require('./node_wecom_crypto')('callback_endpoint_node.js');
const [file, port] = process.argv.slice(2);
const [token, aesKey, receiveId] = fs.readFileSync(file, 'utf8').split('\n')[0].split(' ');
const ENCRYPT = /<Encrypt><!\[CDATA\[([^\]]*)\]\]><\/Encrypt>/;

function answer(res, status) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 0 });
  res.end();
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const q = new URL(req.url, 'http://localhost').searchParams;
    const m = ENCRYPT.exec(Buffer.concat(chunks).toString('utf8'));
    if (req.method !== 'POST' || !m) {
      answer(res, 400);
      return;
    }
    const encrypt = m[1];
    if (wecom.getSignature(token, q.get('timestamp'), q.get('nonce'), encrypt) !== q.get('msg_signature')) {
      answer(res, 403);
      return;
    }
    const { message, id } = wecom.decrypt(aesKey, encrypt);
    if (id !== receiveId || message.length === 0) {
      answer(res, 403);
      return;
    }
    answer(res, 200);
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('listening\n');
});
