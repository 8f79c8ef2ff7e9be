// The browser's download of a file the page holds (an output built in private storage): a click
// on a temporary link, the way a page hands a file it already has to the browser's downloads.
export function triggerDownload(url: string, name: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}
