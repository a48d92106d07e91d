// Makes every workspace's bin entry executable after tsc wrote it and links it into
// node_modules/.bin, so `npm exec tortiectl -- ...` runs from a fresh clone: tsc writes
// 0644, and `npm ci` neither sets the mode of nor links a bin whose file does not exist
// yet (dist/ is built after the install), so npm exec would look for it in the registry.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const binDir = path.join(root, 'node_modules', '.bin');
for (const dir of fs.readdirSync(path.join(root, 'packages'))) {
  const manifest = path.join(root, 'packages', dir, 'package.json');
  if (!fs.existsSync(manifest)) continue;
  const { name, bin } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  const bins = typeof bin === 'string' ? { [name.split('/').pop()]: bin } : (bin ?? {});
  for (const [command, target] of Object.entries(bins)) {
    const file = path.join(root, 'packages', dir, target);
    if (!fs.existsSync(file)) continue;
    fs.chmodSync(file, 0o755);
    // as npm links it: through the workspace's node_modules entry
    const link = path.join(binDir, command);
    const to = path.relative(binDir, path.join(root, 'node_modules', name, target));
    fs.mkdirSync(binDir, { recursive: true });
    let current;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current === to) continue;
    fs.rmSync(link, { force: true });
    fs.symlinkSync(to, link);
  }
}
