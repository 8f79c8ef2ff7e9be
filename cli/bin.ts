/** The installed `diskferry` command (package.json "bin", bundled into dist/cli/diskferry.js). */
import { main } from './main.ts';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
