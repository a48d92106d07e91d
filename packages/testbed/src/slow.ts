// How much slower than this machine everything runs where the code runs now: inside the
// VM runner (TORTIE_IN_VM=1) QEMU emulates the CPU in software (TCG), and agents took
// about four times as long to get ready there. waitUntil stretches its timeouts by it;
// a test stretches its own jest timeouts with it.
export const SLOW = process.env.TORTIE_IN_VM === '1' ? 4 : 1;
