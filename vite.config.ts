import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist' },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
});
