// Building the page: every text from the API goes in as a text node (never innerHTML), so a log line
// cannot inject markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

export const view = document.getElementById("view");

// The status line belongs to the page shown: a view takes its own writer when it starts, and once the
// user has moved on its late answers (a run that just failed, a live tail) no longer write there.
let shownPage = 0;

export function nextPage() {
  shownPage += 1;
  document.getElementById("status").textContent = "";
}

export function statusLine() {
  const mine = shownPage;
  return (text) => {
    if (mine === shownPage) document.getElementById("status").textContent = text;
  };
}
