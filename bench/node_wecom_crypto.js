// Tencent's @wecom/crypto for the node benchmarks (node_crypto_bench.js,
// callback_endpoint_node.js): from $WECOM_NODE_MODULES, else from what
// `make node-deps` installed under build/node; exits 2 naming the script
// when neither has it.
//
//   const wecom = require('./node_wecom_crypto')('node_crypto_bench.js');
'use strict';

const path = require('path');

module.exports = function loadWecomCrypto(script) {
  const dirs = [
    process.env.WECOM_NODE_MODULES,
    path.resolve(__dirname, '..', 'build', 'node', 'node_modules'),
  ].filter(Boolean);
  for (const dir of dirs) {
    try {
      return require(path.join(dir, '@wecom', 'crypto'));
    } catch (e) {
      // try the next place
    }
  }
  process.stderr.write(`${script}: @wecom/crypto not found (run \`make node-deps\`)\n`);
  process.exit(2);
  return null;
};
