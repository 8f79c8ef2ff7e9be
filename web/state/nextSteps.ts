/** One thing to do with the saved file at its destination. */
export interface NextStep {
  text: string;
  /** A command to paste, with the output's name filled in. */
  command?: string;
  /** The destination's own documentation. */
  link?: { href: string; label: string };
}

/**
 * What to do next, by preset (the destination the user named) or else by format. Commands use
 * placeholders in capitals for what only the user knows (VM id, bucket, storage).
 */
export function nextSteps(preset: string | undefined, format: string, file: string): NextStep[] {
  const q = /\s/.test(file) ? `"${file}"` : file;
  switch (preset) {
    case 'proxmox':
      return [
        {
          text: 'Copy the file to the Proxmox host, then import it as a disk of an existing VM (Proxmox VE 7.2 and later):',
          command: `qm disk import VMID ${q} STORAGE`,
        },
        {
          text: 'Attach the imported disk in the VM’s Hardware tab and put it first in the boot order.',
          link: { href: 'https://pve.proxmox.com/pve-docs/qm.1.html', label: 'qm manual' },
        },
      ];
    case 'aws':
      return [
        { text: 'Upload it to an S3 bucket, then start the import:', command: `aws s3 cp ${q} s3://BUCKET/${file}` },
        {
          text: 'VM Import turns it into an AMI:',
          command: `aws ec2 import-image --disk-containers "Format=vmdk,UserBucket={S3Bucket=BUCKET,S3Key=${file}}"`,
          link: { href: 'https://docs.aws.amazon.com/vm-import/latest/userguide/import-vm-image.html', label: 'AWS VM Import' },
        },
      ];
    case 'azure':
      return [
        {
          text: 'Upload it as a page blob (or straight into a managed disk), then create the VM from it:',
          command: `az storage blob upload --type page --account-name ACCOUNT --container-name CONTAINER --file ${q} --name ${file}`,
          link: {
            href: 'https://learn.microsoft.com/azure/virtual-machines/linux/disks-upload-vhd-to-managed-disk-cli',
            label: 'Azure: upload a VHD',
          },
        },
      ];
    case 'hyperv':
      return [
        {
          text: 'Create a VM on the disk (Generation 2 for UEFI guests, 1 for BIOS ones):',
          command: `New-VM -Name NAME -MemoryStartupBytes 4GB -Generation 2 -VHDPath .\\${file}`,
          link: { href: 'https://learn.microsoft.com/powershell/module/hyper-v/new-vm', label: 'New-VM' },
        },
      ];
    case 'esxi':
      return [
        {
          text: 'Deploy the OVA as a new VM (vSphere Client → Deploy OVF Template, or ESXi Host Client → Create/Register VM → Deploy from OVF or OVA), or with VMware’s ovftool:',
          command: `ovftool ${q} vi://root@ESXI-HOST/`,
          link: {
            href: 'https://docs.vmware.com/en/VMware-vSphere/8.0/vsphere-vm-administration/GUID-17BEDA21-43F6-41F4-8FB2-E01D275FE9B4.html',
            label: 'Deploy an OVF template',
          },
        },
      ];
    case 'esxi-datastore': {
      const flat = file.replace(/(\.vmdk)?$/i, '-flat.vmdk');
      return [
        {
          text: `Upload ${file} and ${flat} to the same datastore folder (Datastore browser → Upload, or scp to /vmfs/volumes/DATASTORE/VM/), then add it to a VM as an existing hard disk:`,
          command: `vmkfstools -e /vmfs/volumes/DATASTORE/VM/${file}`,
        },
      ];
    }
    case 'virtualbox':
      return [
        {
          text: 'Attach it to a VM’s SATA controller (or use Settings → Storage):',
          command: `VBoxManage storageattach VMNAME --storagectl SATA --port 0 --device 0 --type hdd --medium ${q}`,
        },
      ];
    case 'gcp':
      return [
        { text: 'Upload the tarball to a Cloud Storage bucket:', command: `gcloud storage cp ${q} gs://BUCKET/${file}` },
        {
          text: 'Create an image from it (the name must end in .tar.gz), then a VM from the image:',
          command: `gcloud compute images create IMAGE --source-uri gs://BUCKET/${file}`,
          link: { href: 'https://cloud.google.com/compute/docs/import/import-existing-image', label: 'Google Cloud: import an image' },
        },
      ];
    case 'openstack':
      return [
        {
          text: 'Upload it to Glance as an image:',
          command: `openstack image create --disk-format qcow2 --container-format bare --file ${q} IMAGE`,
          link: { href: 'https://docs.openstack.org/glance/latest/admin/manage-images.html', label: 'Glance images' },
        },
      ];
    case 'xcp-ng':
      return [
        {
          text: 'Import it with Xen Orchestra (Import → Disk), which makes the VDI; or on the host, into a new VDI of the disk’s size:',
          command: `xe vdi-import uuid=$(xe vdi-create sr-uuid=SR-UUID name-label=NAME type=user virtual-size=SIZE) filename=${q} format=vhd`,
          link: { href: 'https://docs.xcp-ng.org/storage/', label: 'XCP-ng storage' },
        },
      ];
    case 'raw':
      return [
        {
          text: 'A raw image is the disk byte for byte: write it to a drive (check the device name twice), or boot it in v86 or QEMU:',
          command: `qemu-system-x86_64 -m 2G -drive file=${q},format=raw`,
        },
      ];
  }
  switch (format) {
    case 'qcow2':
      return [
        {
          text: 'Boot it with QEMU/KVM, or import it into libvirt:',
          command: `virt-install --name NAME --memory 2048 --import --disk ${q} --os-variant detect=on`,
        },
      ];
    case 'vdi':
      return [
        {
          text: 'Attach it in VirtualBox (Settings → Storage), or:',
          command: `VBoxManage storageattach VMNAME --storagectl SATA --port 0 --device 0 --type hdd --medium ${q}`,
        },
      ];
    case 'vhdx':
    case 'vpc':
      return [
        {
          text: 'Attach it to a Hyper-V VM, or mount it in Windows (double-click, or Mount-DiskImage):',
          command: `Mount-DiskImage -ImagePath "$PWD\\${file}"`,
        },
      ];
    default:
      return [{ text: 'Check it with qemu-img, which reads it exactly as DiskFerry wrote it:', command: `qemu-img check ${q}` }];
  }
}
