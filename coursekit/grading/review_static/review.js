'use strict';
(() => {
  const root = document.getElementById('review');
  const xsrf = document.querySelector('meta[name="xsrf"]').content;
  const help = document.getElementById('help');
  const graderBox = document.getElementById('grader');
  const GRADER_KEY = 'coursekit-review-grader';
  graderBox.value = localStorage.getItem(GRADER_KEY) || graderBox.dataset.default;
  graderBox.addEventListener('change', () => {
    localStorage.setItem(GRADER_KEY, graderBox.value.trim());
  });
  const typing = (el) => el !== null && (el.tagName === 'TEXTAREA' ||
    (el.tagName === 'INPUT' && el.type === 'text'));

  const page = root.dataset.page === 'answer' ? answerPage() : null;

  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      if (typing(document.activeElement)) document.activeElement.blur();
      help.hidden = true;
      return;
    }
    if (page && event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      page.save();
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === '?') { help.hidden = !help.hidden; return; }
    if (event.key === 'g') {
      event.preventDefault();
      graderBox.focus();
      graderBox.select();
      return;
    }
    if (page === null) {
      if (event.key === 'n') location.href = '/next?mode=student';
      if (event.key === 'q') location.href = '/next?mode=question';
      return;
    }
    if (page.key(event)) event.preventDefault();
  });

  function answerPage() {
    const data = root.dataset;
    const items = [...document.querySelectorAll('#rubric input[type=checkbox]')];
    const extra = document.getElementById('extra');
    const comment = document.getElementById('comment');
    const flagged = document.getElementById('flagged');
    const scoreOut = document.getElementById('score');
    const status = document.getElementById('status');
    const who = document.getElementById('who');
    const conflict = document.getElementById('conflict');
    const maximum = Number(data.max);
    let version = data.version === '' ? null : Number(data.version);
    let dirty = false;
    let busy = false;

    const fmt = (x) => String(Number(x.toPrecision(6)));
    const extraValue = () => {
      const text = extra.value.trim();
      if (text === '') return 0;
      const value = Number(text);
      return Number.isFinite(value) ? value : text;
    };
    const score = () => {
      const extraPoints = extraValue();
      let total = typeof extraPoints === 'number' ? extraPoints : NaN;
      for (const item of items) if (item.checked) total += Number(item.dataset.points);
      return total;
    };
    const show = (text, kind) => { status.textContent = text; status.className = kind || ''; };
    const update = () => {
      const total = score();
      scoreOut.textContent = Number.isFinite(total) ? fmt(total) : '?';
      scoreOut.className = Number.isFinite(total) && total >= 0 && total <= maximum ? '' : 'out';
    };
    const changed = () => { dirty = true; update(); show('changed, not saved (s saves)'); };
    for (const el of [...items, flagged]) el.addEventListener('change', changed);
    for (const el of [extra, comment]) el.addEventListener('input', changed);
    window.addEventListener('beforeunload', (event) => { if (dirty) event.preventDefault(); });
    update();

    const describe = (grade) => {
      const chosen = grade.items.length ? grade.items.join(', ') : 'none';
      const lines = [`their grade: saved by ${grade.grader} at ${grade.graded_at} ` +
        `(version ${grade.version})`,
        `score ${fmt(grade.score)} / ${fmt(maximum)}`,
        `items: ${chosen}; extra ${fmt(grade.extra)}${grade.flagged ? '; flagged' : ''}`];
      if (grade.comment) lines.push(`comment: ${grade.comment}`);
      return lines.join('\n');
    };

    async function save(force) {
      if (busy) return false;
      const grader = graderBox.value.trim();
      if (grader === '') {
        show('type your name in the grader box first', 'error');
        graderBox.focus();
        return false;
      }
      localStorage.setItem(GRADER_KEY, grader);
      const body = {
        submission: data.submission, answer: data.answer,
        items: items.filter((i) => i.checked).map((i) => i.value),
        extra: extraValue(), comment: comment.value, flagged: flagged.checked,
        grader, version: force === undefined ? version : force, answer_sha256: data.sha,
      };
      busy = true;
      show('saving...');
      let response, reply;
      try {
        response = await fetch('/api/grade', {
          method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
          headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
        });
        reply = await response.json().catch(
          () => ({error: `${response.status} ${response.statusText}`}));
      } catch (error) {
        busy = false;
        show(`not saved: ${error}`, 'error');
        return false;
      }
      busy = false;
      if (response.ok) {
        const grade = reply.grade;
        version = grade.version;
        dirty = false;
        conflict.hidden = true;
        who.textContent =
          `graded by ${grade.grader} at ${grade.graded_at} (version ${grade.version})`;
        show(`saved: ${fmt(grade.score)} / ${fmt(maximum)}`, 'saved');
        return true;
      }
      if (response.status === 409) {
        conflict.hidden = false;
        conflict.dataset.version = reply.current ? reply.current.version : '';
        document.getElementById('conflict-text').textContent =
          `${reply.error}.\n` + (reply.current ? describe(reply.current) : '') +
          '\nr: reload theirs (drops your changes); w: overwrite with yours';
        show('not saved: conflict', 'error');
        return false;
      }
      show(`not saved: ${reply.error}`, 'error');
      return false;
    }
    const reload = () => { dirty = false; location.reload(); };
    const overwrite = () => {
      if (conflict.hidden) return;
      const current = conflict.dataset.version;
      save(current === '' ? null : Number(current));
    };
    document.getElementById('save').addEventListener('click', () => save());
    document.getElementById('reload').addEventListener('click', reload);
    document.getElementById('overwrite').addEventListener('click', overwrite);

    async function go(url) {
      if (dirty && !(await save())) return;
      location.href = url;
    }
    const keys = {
      s: () => save(), n: () => go(data.next), j: () => go(data.forward),
      k: () => go(data.back), m: () => go(data.other), o: () => go(data.overview),
      f: () => { flagged.checked = !flagged.checked; changed(); },
      e: () => { extra.focus(); extra.select(); },
      c: () => comment.focus(),
      r: () => { if (!conflict.hidden) reload(); },
      w: overwrite,
    };
    return {
      save,
      key(event) {
        if (/^[1-9]$/.test(event.key)) {
          const item = items[Number(event.key) - 1];
          if (item) { item.checked = !item.checked; changed(); }
          return true;
        }
        const action = keys[event.key];
        if (action) { action(); return true; }
        return false;
      },
    };
  }
})();
