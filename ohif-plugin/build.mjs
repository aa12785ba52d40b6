// Bundles the extension and the mode to ES modules the prebuilt viewer imports at run time (dist/).
import { build } from 'esbuild';

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
};

await build({ ...common, entryPoints: { 'awesomme-extension': 'src/extension.js' }, outdir: 'dist', outExtension: { '.js': '.mjs' } });
await build({ ...common, entryPoints: { 'awesomme-mode': 'src/mode.js' }, outdir: 'dist', outExtension: { '.js': '.mjs' } });
