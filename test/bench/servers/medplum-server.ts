/** The closest peer's listener: @medplum/hl7's Hl7Server answering each message with message.buildAck(), no storage. */
import { Hl7Server } from '@medplum/hl7';

const port = Number(process.argv[2]);
const server = new Hl7Server((connection) => {
  connection.addEventListener('message', (event: { message: { buildAck(): never } }) => connection.send(event.message.buildAck()));
  connection.addEventListener('error', () => {});
});
server.start(port);
setTimeout(() => process.send?.('ready'), 300);
