// The lab's page: renders the state the lab process sends over server-sent events
// (/api/events) and asks /api/explain for a clicked matrix cell. Plain DOM, no framework.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Nodes in a row, the ToR above; a line per session, green when Established. */
function renderTopology(state) {
  const root = $('topology');
  root.replaceChildren();
  const width = Number(root.getAttribute('width'));
  const step = width / Math.max(state.nodes.length, 1);
  const at = new Map();
  state.nodes.forEach((n, i) => at.set(n.ip, { x: step * i + step / 2, y: 190 }));
  if (state.tor) at.set(state.tor.address, { x: width / 2, y: 40 });
  const drawn = new Set();
  const line = (a, b, s, who) => {
    const key = [a, b].sort().join(' ');
    if (!at.has(a) || !at.has(b) || drawn.has(key)) return;
    drawn.add(key);
    const p = at.get(a);
    const q = at.get(b);
    const l = svg('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: s.up ? 'up' : 'down' });
    l.appendChild(svg('title', {}, `${who} - ${s.peer}: ${s.type}, ${s.state}`));
    l.setAttribute('data-session', `${a} ${b} ${s.state}`);
    root.appendChild(l);
  };
  for (const n of state.nodes) for (const s of n.sessions) line(n.ip, s.peer, s, n.name);
  if (state.tor) for (const s of state.tor.sessions) line(state.tor.address, s.peer, s, 'ToR');
  const box = (x, y, cls, title, sub) => {
    root.appendChild(
      svg('rect', { x: x - 70, y: y - 22, width: 140, height: 44, rx: 6, class: cls }),
    );
    root.appendChild(svg('text', { x, y: y - 4, 'text-anchor': 'middle' }, title));
    root.appendChild(svg('text', { x, y: y + 12, 'text-anchor': 'middle' }, sub));
  };
  if (state.tor)
    box(
      width / 2,
      40,
      'tor',
      `ToR (${state.tor.kind})`,
      `${state.tor.address} AS ${state.tor.asn}`,
    );
  for (const n of state.nodes) {
    const p = at.get(n.ip);
    box(p.x, p.y, 'box', n.reflector ? `${n.name} (reflector)` : n.name, `${n.ip} AS ${n.asn}`);
  }
  const nodes = $('nodes');
  nodes.replaceChildren();
  for (const n of state.nodes) {
    const div = el('div', { class: 'node', 'data-node': n.name });
    div.appendChild(el('h3', {}, n.name));
    const sessions = el('ul');
    for (const s of n.sessions)
      sessions.appendChild(
        el('li', { class: s.up ? 'up' : 'down' }, `${s.peer} ${s.type}: ${s.state}`),
      );
    div.appendChild(sessions);
    const pods = el('ul', { class: 'pods' });
    for (const p of n.pods) pods.appendChild(el('li', {}, `pod ${p.namespace}/${p.name} ${p.ip}`));
    div.appendChild(pods);
    nodes.appendChild(div);
  }
}

let selected;

function renderMatrix(state) {
  const t = $('matrix');
  t.replaceChildren();
  if (!state.matrixAt) return;
  $('matrix-at').textContent = `at ${state.matrixAt.slice(11, 19)} UTC`;
  const head = el('tr');
  head.appendChild(el('th', {}, 'from \\ to'));
  for (const p of state.pods) head.appendChild(el('th', {}, p));
  t.appendChild(head);
  for (const a of state.pods) {
    const row = el('tr');
    row.appendChild(el('th', {}, a));
    for (const b of state.pods) {
      const ok = state.matrix[a]?.[b];
      if (a === b || ok === undefined) {
        row.appendChild(el('td', {}, '-'));
        continue;
      }
      const td = el('td', { class: ok ? 'ok' : 'blocked', 'data-from': a, 'data-to': b });
      td.textContent = ok ? 'ok' : 'blocked';
      if (selected === `${a} ${b}`) td.classList.add('selected');
      td.addEventListener('click', () => explainCell(a, b));
      row.appendChild(td);
    }
    t.appendChild(row);
  }
}

async function explainCell(from, to) {
  selected = `${from} ${to}`;
  document.querySelectorAll('#matrix td.selected').forEach((td) => td.classList.remove('selected'));
  document
    .querySelector(`#matrix td[data-from="${from}"][data-to="${to}"]`)
    ?.classList.add('selected');
  const out = $('explain');
  out.textContent = `explaining ${from} -> ${to} ...`;
  const r = await fetch(
    `api/explain?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
  );
  const x = await r.json();
  out.replaceChildren();
  if (x.error) {
    out.textContent = x.error;
    return;
  }
  if (x.deciding) {
    const d = x.deciding;
    out.appendChild(
      el(
        'div',
        { class: 'deciding' },
        `${x.allowed ? 'ALLOWED' : 'DENIED'} by ${d.where}: ${d.action} (${d.direction} at ${d.endpoint})`,
      ),
    );
  }
  out.appendChild(document.createTextNode(x.text));
}

function addEvent(e) {
  const li = el('li', { class: e.kind }, `${e.at.slice(11, 23)} ${e.text}`);
  $('events').prepend(li);
}

const source = new EventSource('api/events');
source.addEventListener('state', (m) => {
  const state = JSON.parse(m.data);
  renderTopology(state);
  renderMatrix(state);
});
source.addEventListener('event', (m) => addEvent(JSON.parse(m.data)));
