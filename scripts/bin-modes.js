// Makes every workspace's bin entry executable after tsc wrote it (tsc writes 0644, and
// npm only sets the mode of bins that existed at install time, before the first build),
// so `npm exec tortiectl -- ...` runs from a fresh clone.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
for (const dir of fs.readdirSync(path.join(root, 'packages'))) {
  const manifest = path.join(root, 'packages', dir, 'package.json');
  if (!fs.existsSync(manifest)) continue;
  const { bin } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  for (const target of Object.values(typeof bin === 'string' ? { bin } : (bin ?? {}))) {
    const file = path.join(root, 'packages', dir, target);
    if (fs.existsSync(file)) fs.chmodSync(file, 0o755);
  }
}
