// Safe rendering of model output and user text: everything becomes DOM text nodes (never innerHTML),
// with a little Markdown (paragraphs, lists, code blocks, `code`, **bold**, *italic*) built as elements.
"use strict";

function inlineMarkdown(parent, text) {
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const token = match[0];
    let element;
    if (token.startsWith("`")) { element = document.createElement("code"); element.textContent = token.slice(1, -1); }
    else if (token.startsWith("**")) { element = document.createElement("strong"); element.textContent = token.slice(2, -2); }
    else { element = document.createElement("em"); element.textContent = token.slice(1, -1); }
    parent.append(element);
    last = match.index + token.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function renderMarkdown(container, text) {
  container.replaceChildren();
  const lines = String(text).split("\n");
  let list = null, paragraph = null, code = null;
  const close = () => { list = null; paragraph = null; };
  for (const line of lines) {
    if (line.trim().startsWith("```")) {
      if (code) { code = null; } else { close(); const pre = document.createElement("pre"); code = document.createElement("code"); pre.append(code); container.append(pre); }
      continue;
    }
    if (code) { code.append(document.createTextNode((code.textContent ? "\n" : "") + line)); continue; }
    const item = line.match(/^\s*(?:[-*]|\d+[.)])\s+(.*)$/);
    if (item) {
      if (!list) { paragraph = null; list = document.createElement(/^\s*\d/.test(line) ? "ol" : "ul"); container.append(list); }
      const li = document.createElement("li"); inlineMarkdown(li, item[1]); list.append(li);
      continue;
    }
    if (!line.trim()) { close(); continue; }
    list = null;
    if (!paragraph) { paragraph = document.createElement("p"); container.append(paragraph); }
    else paragraph.append(document.createElement("br"));
    inlineMarkdown(paragraph, line);
  }
}

window.renderMarkdown = renderMarkdown;
