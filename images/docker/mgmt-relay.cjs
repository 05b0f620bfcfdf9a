'use strict';
// brick-lab management relay, run by node-entry.sh inside a guest-mode node container:
//   node mgmt-relay.cjs LISTEN_HOST LISTEN_PORT TARGET_PORT
// QEMU's user-mode network shows a forwarded connection to the guest as coming from the host
// only when it arrives from loopback; from any other address the guest (which has no route
// there, and restrict=on) could not answer. So QEMU forwards 127.0.0.1:TARGET_PORT, and this
// relays the container's management address to it.
const net = require('node:net');

const [host, listenPort, targetPort] = process.argv.slice(2);
if (!host || !/^\d+$/.test(listenPort ?? '') || !/^\d+$/.test(targetPort ?? '')) {
  console.error('usage: mgmt-relay.cjs LISTEN_HOST LISTEN_PORT TARGET_PORT');
  process.exit(2);
}
const server = net.createServer((client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: Number(targetPort) });
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
});
server.on('error', (e) => {
  console.error(`brick-lab mgmt-relay: ${e.message}`);
  process.exit(1);
});
server.listen(Number(listenPort), host, () => console.error(`brick-lab mgmt-relay: ${host}:${listenPort} -> 127.0.0.1:${targetPort}`));
