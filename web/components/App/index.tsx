import { hasSource, selectedImage, useApp } from '../../state/store.ts';
import { ConvertStatus } from '../ConvertStatus/index.tsx';
import { DropZone } from '../DropZone/index.tsx';
import { ImageInfo } from '../ImageInfo/index.tsx';
import { ImageList } from '../ImageList/index.tsx';
import { TargetPanel } from '../TargetPanel/index.tsx';
import { UpdatePrompt } from '../UpdatePrompt/index.tsx';
import { orderFormats } from '../../state/formats.ts';
import { usePageDrop } from './usePageDrop.ts';
import './style.css';

/** For someone who has never met these formats: which one belongs to which product. */
const GLOSSARY: [string, string][] = [
  ['vmdk', 'VMware Workstation, ESXi, and OVA appliances (AWS imports them too)'],
  ['vdi', 'VirtualBox'],
  ['vhd / vhdx', 'Hyper-V and Windows; fixed VHD is what Azure accepts'],
  ['qcow2', 'QEMU, KVM, Proxmox, OpenStack, libvirt'],
  ['raw / img', 'a plain copy of the disk, byte for byte (dd, v86, cloud images)'],
];

function Glossary() {
  return (
    <section className="card glossary" aria-label="Which format is which">
      <h2 className="step-title">Which format is which?</h2>
      <dl>
        {GLOSSARY.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <p className="muted">
        Not sure what you have? Drop it: DiskFerry recognises the format from the file's contents, shows what is inside, and offers
        ready-made settings for where it is going.
      </p>
    </section>
  );
}

export function App() {
  usePageDrop();
  const image = useApp(selectedImage);
  const formats = useApp((s) => s.formats);
  const hasFiles = useApp(hasSource);
  const brand = (
    <div className="hero__brand">
      <img src="/icons/icon.svg" alt="" width="40" height="40" />
      <span>DiskFerry</span>
    </div>
  );
  // Once a disk is open the page is a workspace: a slim bar (brand and drop zone), the preview
  // on the left and the target with its Convert button on the right, all in the first screen.
  if (hasFiles) {
    return (
      <div className="page page--workspace">
        <header className="topbar">
          {brand}
          <DropZone />
        </header>
        <main className="workspace">
          <div className="workspace__main">
            <ImageList />
            {image && <ImageInfo key={image.path} image={image} />}
          </div>
          <div className="workspace__side">
            {image && <TargetPanel image={image} />}
            <ConvertStatus />
          </div>
        </main>
        <footer className="footer muted">
          DiskFerry reads and writes the same files as <code>qemu-img</code>, with the same names for formats and options. Nothing is
          uploaded.
        </footer>
        <UpdatePrompt />
      </div>
    );
  }
  return (
    <div className="page">
      <header className="hero">
        {brand}
        <h1>Convert virtual-machine disks, right in this tab</h1>
        <p>
          Move a VM between VMware, VirtualBox, Hyper-V, Proxmox, AWS or Azure: drop its disk, see what is inside, and save it in the format
          the destination wants. Your disk never leaves this computer — there is no upload and no server. It works offline too.
        </p>
        {formats.length > 0 && (
          <p className="hero__formats">
            Reads{' '}
            {orderFormats(formats)
              .map((f) => f.title)
              .join(', ')}
            .
          </p>
        )}
      </header>

      <main className="steps">
        <section aria-label="Choose a disk image">
          <h2 className="step-title">
            <span className="step">1</span> Choose a disk image
          </h2>
          <DropZone />
        </section>
        <Glossary />
        <ConvertStatus />
      </main>

      <footer className="footer muted">
        DiskFerry reads and writes the same files as <code>qemu-img</code>, with the same names for formats and options. Large disks are
        read in slices and written straight to disk, so they need no extra memory.
      </footer>
      <UpdatePrompt />
    </div>
  );
}
