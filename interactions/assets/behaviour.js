/*
 * Behavioural capture on the sign-in page (README "Behavioural signals"). Plain JavaScript,
 * no build step; served from the provider's own origin (interactions/assets.ts), so the
 * Content-Security-Policy stays `script-src 'self'`.
 *
 * Markup (interactions/views/login.ts): the sign-in form holds
 *   <input type="hidden" name="behaviour" value="">
 * and a password field. On submit this script writes one JSON object into that field, in the
 * format of policies/behaviour.ts (the server checks it strictly and ignores it when it is
 * anything else):
 *   { v: 1, keystroke?: { hold, dd, ud }, unusable?: reason, pointer?: { …summary } }
 *
 * Keystrokes (Killourhy & Maxion 2009): for each position of the password, the hold time
 * (keydown→keyup), and between consecutive positions keydown→keydown (dd) and keyup→keydown
 * (ud), in whole milliseconds. NEVER which key: a key's identity (`key`) is looked at only to
 * decide whether it types a character, corrects, moves the caret or is a modifier, and is
 * neither kept nor sent. A key-up is matched to the earliest press still held (typists
 * release keys in the order they pressed them far more often than not), because matching by
 * key would mean remembering which key each position was.
 *
 * A sample whose timings would not be those of the password typed in order is sent without
 * timings, with the reason only: a correction (Backspace, Delete, undo, typing over a
 * selection), a paste or drop, autofill or a password manager (the value changed without a
 * matching key press), an input method composing characters, caret navigation (arrows,
 * Home/End, a click into the text), a password too long or too short to compare.
 *
 * Pointer: a summary of the mouse's movement over the page (pointerType 'mouse' only; touch
 * and pen give none), accumulated as it happens: the path itself is never kept.
 *
 * Without JavaScript the field stays empty and the login works as it always did.
 */
(function () {
  'use strict';

  var MAX_POSITIONS = 64;
  var MIN_POSITIONS = 4;
  /** A stop between two mouse moves longer than this is a pause, and ends a stroke. */
  var PAUSE_MS = 300;
  /** How long a submit waits for the key-ups of keys still held (Enter pressed before the last key was released). */
  var KEYUP_WAIT_MS = 250;

  var field = document.querySelector('form input[type="hidden"][name="behaviour"]');
  if (!field || !field.form) return;
  var form = field.form;
  var password = form.querySelector('input[type="password"]');
  if (!password) return;

  var MODIFIERS = { Shift: 1, Control: 1, Alt: 1, AltGraph: 1, Meta: 1, CapsLock: 1, Fn: 1, FnLock: 1, Hyper: 1, Super: 1, NumLock: 1, ScrollLock: 1, OS: 1 };
  var CORRECTIONS = { Backspace: 1, Delete: 1, Clear: 1, Undo: 1, Redo: 1, Cut: 1, Paste: 1 };
  var NAVIGATION = { ArrowLeft: 1, ArrowRight: 1, ArrowUp: 1, ArrowDown: 1, Home: 1, End: 1, PageUp: 1, PageDown: 1 };

  /** What a key does to the field: 'char', 'modifier', 'correction', 'navigation', 'composition' or 'other'. */
  function kindOf(e) {
    var k = e.key;
    if (e.isComposing || e.keyCode === 229 || k === 'Process' || k === 'Unidentified' || k === 'Dead') return 'composition';
    if (typeof k !== 'string') return 'other';
    if (MODIFIERS[k]) return 'modifier';
    if (CORRECTIONS[k]) return 'correction';
    if (NAVIGATION[k]) return 'navigation';
    // A printable key's `key` is the one character it types; named keys (Enter, Tab, F1) are longer.
    // With Control or Meta it is a shortcut (select all, undo), which types nothing; Control
    // with Alt is AltGr on Windows, which types.
    if (Array.from(k).length === 1) return (e.ctrlKey && !e.altKey) || e.metaKey ? 'shortcut' : 'char';
    return 'other';
  }

  // ---- keystrokes ----
  /** Per position: press and release times (ms, rounded), release undefined while held. */
  var positions = [];
  var unusable;
  /** Presses of character keys not yet matched by an `input` event. */
  var unmatched = 0;

  function reset() {
    positions = [];
    unusable = undefined;
    unmatched = 0;
  }
  function spoil(reason) {
    if (unusable === undefined) unusable = reason;
  }

  password.addEventListener('keydown', function (e) {
    var kind = kindOf(e);
    if (kind === 'modifier' || kind === 'other') return;
    if (kind === 'composition') return spoil('composition');
    if (kind === 'correction') return spoil('correction');
    if (kind === 'navigation') return spoil('navigation');
    if (kind === 'shortcut') {
      // Control+V / Meta+V is a paste (the paste event says so); any other shortcut changes
      // the selection or the text in ways the timings cannot follow.
      return;
    }
    // A held key repeating types characters without presses of their own.
    if (e.repeat) return spoil('correction');
    var end = password.value.length;
    if (password.selectionStart !== password.selectionEnd) return spoil('correction');
    if (password.selectionStart !== end) return spoil('navigation');
    unmatched += 1;
    positions.push({ down: Math.round(e.timeStamp), up: undefined });
  });

  // Key-ups may land after focus left the field (Enter submitted, Tab moved on): listen on
  // the document. Only character keys release a position.
  document.addEventListener('keyup', function (e) {
    if (kindOf(e) !== 'char') return;
    for (var i = 0; i < positions.length; i += 1) {
      if (positions[i].up === undefined) {
        positions[i].up = Math.max(Math.round(e.timeStamp), positions[i].down);
        break;
      }
    }
    if (waiting && !positions.some(function (p) { return p.up === undefined; })) finishSubmit();
  }, true);

  password.addEventListener('input', function (e) {
    var t = e.inputType;
    if (password.value === '') {
      // Everything deleted: whatever comes next is a fresh sample.
      reset();
      return;
    }
    if (t === 'insertText') {
      if (unmatched > 0) unmatched -= 1;
      else spoil('autofill');
    } else if (t === 'insertFromPaste' || t === 'insertFromDrop' || t === 'insertFromPasteAsQuotation') {
      spoil('paste');
    } else if (t === 'insertCompositionText' || t === 'insertFromComposition') {
      spoil('composition');
    } else if (typeof t === 'string' && (t.indexOf('delete') === 0 || t.indexOf('history') === 0)) {
      spoil('correction');
    } else {
      // insertReplacementText, or no inputType at all: a password manager or the browser's autofill.
      spoil('autofill');
    }
  });
  password.addEventListener('paste', function () { spoil('paste'); });
  password.addEventListener('drop', function () { spoil('paste'); });
  password.addEventListener('compositionstart', function () { spoil('composition'); });
  // A click or tap that puts the caret inside the text (not at its end) moves it.
  password.addEventListener('mouseup', function () {
    if (password.value.length > 0 && (password.selectionStart !== password.value.length || password.selectionEnd !== password.value.length)) spoil('navigation');
  });

  /** The browser's own autofill highlight (`:autofill`, older engines `:-webkit-autofill`). */
  function isAutofilled() {
    var selectors = [':autofill', ':-webkit-autofill'];
    for (var i = 0; i < selectors.length; i += 1) {
      try {
        return password.matches(selectors[i]);
      } catch {
        // An engine that does not know the selector throws: try the next one.
      }
    }
    return false;
  }

  function keystrokePart() {
    var n = Array.from(password.value).length;
    if (n === 0) return {};
    if (unusable !== undefined) return { unusable: unusable };
    // Characters without presses of their own, or presses without characters: not typed here.
    if (isAutofilled() || n !== positions.length || unmatched !== 0) return { unusable: 'autofill' };
    if (n > MAX_POSITIONS) return { unusable: 'too_long' };
    if (n < MIN_POSITIONS) return { unusable: 'too_short' };
    var hold = [];
    var dd = [];
    var ud = [];
    for (var i = 0; i < positions.length; i += 1) {
      var p = positions[i];
      // A key still held at submit has no hold time: no sample rather than a wrong one.
      if (p.up === undefined) return {};
      hold.push(p.up - p.down);
      if (i > 0) {
        var prev = positions[i - 1];
        dd.push(p.down - prev.down);
        ud.push(p.down - prev.up);
      }
    }
    // Beyond the ranges the server accepts (policies/behaviour.ts), e.g. a pause of minutes
    // in the middle of the password: no sample rather than one the server would refuse whole.
    for (var j = 0; j < hold.length; j += 1) if (hold[j] < 0 || hold[j] > 2000) return {};
    for (var m = 0; m < dd.length; m += 1) if (dd[m] < 0 || dd[m] > 5000 || ud[m] < -2000 || ud[m] > 5000) return {};
    return { keystroke: { hold: hold, dd: dd, ud: ud } };
  }

  // ---- pointer ----
  var pt = {
    moves: 0, distance: 0, first: 0, last: 0, lastX: 0, lastY: 0,
    /** Speeds (Welford: count, mean, M2), absolute speed changes, absolute turns. */
    speedN: 0, speedMean: 0, speedM2: 0, lastSpeed: -1,
    accelN: 0, accelSum: 0,
    turnN: 0, turnSum: 0, lastAngle: null,
    pauses: 0,
    /** The stroke under way: start point and path length; finished strokes' straightness summed. */
    strokeX: 0, strokeY: 0, strokePath: 0, strokes: 0, straightSum: 0,
    clicks: 0, dwellSum: 0, downAt: -1,
  };

  function endStroke() {
    if (pt.strokePath > 0) {
      var disp = Math.hypot(pt.lastX - pt.strokeX, pt.lastY - pt.strokeY);
      pt.straightSum += Math.min(1, disp / pt.strokePath);
      pt.strokes += 1;
    }
    pt.strokeX = pt.lastX;
    pt.strokeY = pt.lastY;
    pt.strokePath = 0;
  }

  document.addEventListener('pointermove', function (e) {
    if (e.pointerType !== 'mouse' || pt.moves >= 100000) return;
    var t = e.timeStamp;
    var x = e.clientX;
    var y = e.clientY;
    if (pt.moves === 0) {
      pt.first = t;
      pt.strokeX = x;
      pt.strokeY = y;
    } else {
      var dt = t - pt.last;
      var dx = x - pt.lastX;
      var dy = y - pt.lastY;
      var d = Math.hypot(dx, dy);
      if (dt > PAUSE_MS) {
        pt.pauses += 1;
        endStroke();
        pt.lastSpeed = -1;
        pt.lastAngle = null;
      }
      pt.distance += d;
      pt.strokePath += d;
      if (dt > 0) {
        var v = d / dt;
        pt.speedN += 1;
        var delta = v - pt.speedMean;
        pt.speedMean += delta / pt.speedN;
        pt.speedM2 += delta * (v - pt.speedMean);
        if (pt.lastSpeed >= 0) {
          pt.accelN += 1;
          pt.accelSum += Math.abs(v - pt.lastSpeed) / dt;
        }
        pt.lastSpeed = v;
      }
      if (d > 0) {
        var angle = Math.atan2(dy, dx);
        if (pt.lastAngle !== null) {
          var turn = Math.abs(angle - pt.lastAngle);
          if (turn > Math.PI) turn = 2 * Math.PI - turn;
          pt.turnN += 1;
          pt.turnSum += turn;
        }
        pt.lastAngle = angle;
      }
    }
    pt.moves += 1;
    pt.last = t;
    pt.lastX = x;
    pt.lastY = y;
  }, { capture: true, passive: true });

  document.addEventListener('pointerdown', function (e) {
    if (e.pointerType !== 'mouse') return;
    pt.downAt = e.timeStamp;
    endStroke();
  }, { capture: true, passive: true });
  document.addEventListener('pointerup', function (e) {
    if (e.pointerType !== 'mouse' || pt.downAt < 0) return;
    if (pt.clicks < 1000) {
      pt.clicks += 1;
      pt.dwellSum += Math.max(0, e.timeStamp - pt.downAt);
    }
    pt.downAt = -1;
  }, { capture: true, passive: true });

  /** Rounded and held within the ranges the server accepts. */
  function num(x, max, digits) {
    var f = Math.pow(10, digits);
    return Math.round(Math.min(Math.max(x, 0), max) * f) / f;
  }

  function pointerPart() {
    if (pt.moves < 2) return undefined;
    endStroke();
    var sd = pt.speedN > 1 ? Math.sqrt(pt.speedM2 / (pt.speedN - 1)) : 0;
    return {
      moves: pt.moves,
      distance: num(pt.distance, 1000000, 1),
      duration: num(Math.round(pt.last - pt.first), 3600000, 0),
      speedMean: num(pt.speedMean, 100, 4),
      speedSd: num(sd, 100, 4),
      accelMean: num(pt.accelN ? pt.accelSum / pt.accelN : 0, 100, 5),
      curvatureMean: num(pt.turnN ? pt.turnSum / pt.turnN : 0, Math.PI - 0.0001, 4),
      straightness: num(pt.strokes ? pt.straightSum / pt.strokes : 1, 1, 4),
      pauses: Math.min(pt.pauses, 10000),
      clicks: pt.clicks,
      clickDwellMean: num(pt.clicks ? pt.dwellSum / pt.clicks : 0, 5000, 0),
    };
  }

  // ---- submit ----
  var waiting = false;
  var submitted = false;

  function fill() {
    var out = { v: 1 };
    var k = keystrokePart();
    if (k.keystroke) out.keystroke = k.keystroke;
    if (k.unusable) out.unusable = k.unusable;
    var p = pointerPart();
    if (p) out.pointer = p;
    field.value = out.keystroke || out.unusable || out.pointer ? JSON.stringify(out) : '';
  }

  function finishSubmit() {
    if (submitted) return;
    submitted = true;
    waiting = false;
    fill();
    // requestSubmit, not submit(): the page's other scripts (device-key.js) see this submit
    // and may hold it back too; they resume it the same way.
    if (typeof form.requestSubmit === 'function') form.requestSubmit();
    else form.submit();
  }

  form.addEventListener('submit', function (e) {
    if (submitted) return;
    var held = unusable === undefined && positions.some(function (p) { return p.up === undefined; });
    if (!held) {
      fill();
      return;
    }
    // Enter was pressed before the last key was released: wait a moment for its key-up, so
    // the last position has a hold time. Then submit as the user asked, with or without it.
    e.preventDefault();
    if (waiting) return;
    waiting = true;
    window.setTimeout(finishSubmit, KEYUP_WAIT_MS);
  });
})();
