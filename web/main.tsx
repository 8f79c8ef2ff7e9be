import { createRoot } from 'react-dom/client';

function App() {
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 720, margin: '3rem auto', lineHeight: 1.5 }}>
      <h1>DiskFerry</h1>
      <p>
        Convert virtual-machine disk images — vmdk, vdi, vhd, vhdx, qcow, qcow2, cow, cloop, raw — right here in the
        browser tab. Nothing is uploaded.
      </p>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
