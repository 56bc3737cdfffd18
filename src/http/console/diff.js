// A word diff (longest common subsequence over words, whitespace kept with the word before it)
// between two rounds' answers, rendered as the new text with added words in <ins> and removed
// ones in <del>. Without the <del> elements the text is exactly the new answer.

const words = (s) => s.match(/\s+|[^\s]+\s*/g) || [];

/// [{op: "same"|"add"|"del", text}] turning `a` into `b`.
export function diffWords(a, b) {
  const x = words(a), y = words(b);
  const key = (w) => w.trim();
  // Long answers: an O(n·m) table would be large; fall back to "all replaced".
  if (x.length * y.length > 4e6) return [{ op: "del", text: a }, { op: "add", text: b }];
  const n = x.length, m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = key(x[i]) === key(y[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  const push = (op, text) => {
    const last = out[out.length - 1];
    if (last && last.op === op) last.text += text; else out.push({ op, text });
  };
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && key(x[i]) === key(y[j])) { push("same", y[j]); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { push("add", y[j]); j++; }
    else { push("del", x[i]); i++; }
  }
  return out;
}

/// The new text as DOM nodes with the change from `previous` marked.
export function renderDiff(previous, text) {
  const frag = document.createDocumentFragment();
  for (const { op, text: t } of diffWords(previous, text)) {
    if (op === "same") frag.append(t);
    else {
      const node = document.createElement(op === "add" ? "ins" : "del");
      node.textContent = t;
      frag.append(node);
    }
  }
  return frag;
}
