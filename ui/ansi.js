// ANSI SGR (ESC [ ... m) to CSS classes.  kilnd's log view keeps SGR and
// escapes every other control, so only SGR needs reading here; anything
// else that looks like an escape is shown as text.  A sequence split
// across two chunks is kept until the next one.

// 256-colour index to the nearest of the 16 named colours: the page may
// not set inline styles (its CSP), only classes.
function nearest16(n) {
	if (n < 16)
		return n;
	if (n >= 232) {
		const g = n - 232;	// 0..23, dark to light
		return g < 6 ? 0 : g < 14 ? 8 : g < 20 ? 7 : 15;
	}
	const c = n - 16, r = Math.floor(c / 36), g = Math.floor(c / 6) % 6,
	    b = c % 6;
	const hi = Math.max(r, g, b);
	if (hi === 0)
		return 0;
	const bit = v => (v * 2 >= hi && v > 0 ? 1 : 0);
	const base = bit(r) | (bit(g) << 1) | (bit(b) << 2);
	return base + (hi >= 4 ? 8 : 0);
}

export class AnsiState {
	constructor() {
		this.fg = -1;
		this.bg = -1;
		this.bold = false;
		this.dim = false;
		this.italic = false;
		this.underline = false;
		this.pending = '';
	}

	classes() {
		const c = [];
		if (this.fg >= 0)
			c.push('f' + this.fg);
		if (this.bg >= 0)
			c.push('k' + this.bg);
		if (this.bold)
			c.push('b');
		if (this.dim)
			c.push('d');
		if (this.italic)
			c.push('i');
		if (this.underline)
			c.push('u');
		return c.join(' ');
	}

	sgr(params) {
		const p = params === '' ? [0] : params.split(/[;:]/).map(x =>
		    x === '' ? 0 : Number(x));
		for (let i = 0; i < p.length; i++) {
			const v = p[i];
			if (v === 0) {
				this.fg = this.bg = -1;
				this.bold = this.dim = this.italic = this.underline =
				    false;
			} else if (v === 1)
				this.bold = true;
			else if (v === 2)
				this.dim = true;
			else if (v === 3)
				this.italic = true;
			else if (v === 4)
				this.underline = true;
			else if (v === 22)
				this.bold = this.dim = false;
			else if (v === 23)
				this.italic = false;
			else if (v === 24)
				this.underline = false;
			else if (v >= 30 && v <= 37)
				this.fg = v - 30;
			else if (v === 39)
				this.fg = -1;
			else if (v >= 40 && v <= 47)
				this.bg = v - 40;
			else if (v === 49)
				this.bg = -1;
			else if (v >= 90 && v <= 97)
				this.fg = v - 90 + 8;
			else if (v >= 100 && v <= 107)
				this.bg = v - 100 + 8;
			else if (v === 38 || v === 48) {
				let col = -1;
				if (p[i + 1] === 5 && i + 2 < p.length) {
					col = p[i + 2] <= 255 ? nearest16(p[i + 2]) : -1;
					i += 2;
				} else if (p[i + 1] === 2 && i + 4 < p.length) {
					const [r, g, b] = [p[i + 2], p[i + 3], p[i + 4]];
					col = nearest16(16 + 36 * Math.min(5, Math.round(r / 51)) +
					    6 * Math.min(5, Math.round(g / 51)) +
					    Math.min(5, Math.round(b / 51)));
					i += 4;
				}
				if (v === 38)
					this.fg = col;
				else
					this.bg = col;
			}
		}
	}
}

// Split text into [text, classes] pieces, updating state.
export function ansiPieces(text, state) {
	const out = [];
	let s = state.pending + text, i = 0, start = 0;
	state.pending = '';
	const flush = end => {
		if (end > start)
			out.push([s.slice(start, end), state.classes()]);
	};
	for (;;) {
		i = s.indexOf('\x1b', i);
		if (i < 0)
			break;
		if (i + 1 >= s.length) {
			// Maybe the start of a sequence: wait for more.
			flush(i);
			state.pending = s.slice(i);
			return out;
		}
		if (s[i + 1] !== '[') {
			i++;
			continue;
		}
		let j = i + 2;
		while (j < s.length && j - i < 64 && /[0-9;:]/.test(s[j]))
			j++;
		if (j >= s.length && j - i < 64) {
			flush(i);
			state.pending = s.slice(i);
			return out;
		}
		if (s[j] === 'm') {
			flush(i);
			state.sgr(s.slice(i + 2, j));
			start = i = j + 1;
		} else
			i++;
	}
	flush(s.length);
	return out;
}
