// A big log in the log page: how soon its first text shows, how long the
// main thread is blocked at a stretch while it renders, whether the page
// answers meanwhile, and whether all of it arrives.  The figures are
// printed, never judged (no timed assertions); the checks are functional.
//
// tests/ui/run.sh runs it for 16 MiB (KILN_BIGLOG_MIB unset); bench/ui
// runs it with KILN_BIGLOG_MIB=1,4,16 and KILN_BIGLOG_BENCH=1, which
// prints a table with each size's ratio to the first.
import {
	BASE, WAIT, api, check, flow, launch, ok, sha256, shot, submit, summary, waitJob,
} from './lib.mjs';

const SGR = /\x1b\[[0-9;]*m/g;
const sizes = (process.env.KILN_BIGLOG_MIB || '16').split(',').map(Number);
const bench = process.env.KILN_BIGLOG_BENCH === '1';

// A recipe printing about MIB MiB of 100-byte lines, every eighth one in
// colour; kept 64 KiB under the size so that the default max_log_size
// (16M) never cuts it.
function recipe(mib) {
	const bytes = mib * 1048576 - 65536;
	return `awk -v n=${bytes} 'BEGIN { pad = sprintf("%80s", ""); gsub(/ /, "x", pad);
		while (t < n) { i++;
			if (i % 8 == 0) s = sprintf("\\033[3%dmline %d in colour\\033[0m %s", 1 + i % 6, i, pad);
			else s = sprintf("line %d %s", i, pad);
			print s; t += length(s) + 1 } }'`;
}

// Installed before any of the page's scripts: the time of the first text
// in pre#log and of #log-status turning "ended", and every long task.
function instrument() {
	const perf = window.kilnPerf = { firstText: null, ended: null, longtasks: [] };
	new PerformanceObserver(list => {
		for (const e of list.getEntries())
			perf.longtasks.push([e.startTime, e.duration]);
	}).observe({ type: 'longtask', buffered: true });
	// Watching the whole document only until the first text: mutation
	// records of a 16 MiB render would cost more than they tell.  Then
	// one look per frame at #log-status (frames wait for the main thread
	// too, as a person would).
	const endWatch = () => {
		const st = document.querySelector('#log-status');
		if (st && st.textContent.trim() === 'ended')
			perf.ended = performance.now();
		else
			requestAnimationFrame(endWatch);
	};
	const mo = new MutationObserver(() => {
		const pre = document.querySelector('pre#log');
		if (pre && pre.textContent.length > 0) {
			perf.firstText = performance.now();
			mo.disconnect();
			requestAnimationFrame(endWatch);
		}
	});
	mo.observe(document, { childList: true, subtree: true, characterData: true });
}

async function measure(browser, mib) {
	const id = await submit(recipe(mib));
	const job = await waitJob(id, { ms: 600_000 });
	if (job.state !== 'succeeded')
		throw new Error(`the ${mib} MiB log job ${id} ${job.state}: ${job.targets[0].error}`);
	const view = (await api('GET', `/v1/jobs/${id}/targets/linux_amd64/log`)).text;
	const want = view.replace(SGR, '');
	const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
	await page.addInitScript(instrument);
	await page.goto(`${BASE}/#/jobs/${id}/log/linux_amd64`);
	await page.waitForFunction(() => window.kilnPerf && window.kilnPerf.firstText !== null,
		null, { timeout: WAIT, polling: 50 });
	// Round trips to the page while it renders: each must come back.
	let trips = 0, tripsDuring = 0, worstTrip = 0;
	for (;;) {
		const t0 = performance.now();
		const ended = await page.evaluate(() => window.kilnPerf.ended !== null);
		worstTrip = Math.max(worstTrip, performance.now() - t0);
		trips++;
		if (ended)
			break;
		tripsDuring++;
		if (trips > 6000)
			throw new Error('the log page did not end in 10 minutes');
		await new Promise(r => setTimeout(r, 100));
	}
	const got = await page.evaluate(async () => {
		const text = document.querySelector('pre#log').textContent;
		const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
		return {
			length: text.length,
			sha256: [...new Uint8Array(d)].map(b => b.toString(16).padStart(2, '0')).join(''),
			esc: text.includes('\x1b'),
			spans: document.querySelectorAll('pre#log span').length,
			perf: window.kilnPerf,
		};
	});
	await shot(page, `log-${mib}mib`).catch(() => {});
	await page.close();
	const lt = got.perf.longtasks.map(x => x[1]);
	return {
		mib, id, viewBytes: Buffer.byteLength(view), wantLength: want.length,
		wantSha: sha256(Buffer.from(want)), got,
		firstText: got.perf.firstText, ended: got.perf.ended,
		longest: lt.length ? Math.max(...lt) : 0, longCount: lt.length,
		longSum: lt.reduce((a, b) => a + b, 0),
		trips, tripsDuring, worstTrip,
	};
}

const f = n => n.toFixed(0).padStart(8);
const browser = await launch();
const rows = [];
for (const mib of sizes) {
	await flow(`${mib} MiB log`, async () => {
		const r = await measure(browser, mib);
		rows.push(r);
		console.log(`# ${mib} MiB log (job ${r.id}, view ${r.viewBytes} bytes, ${r.got.spans} spans):` +
			` first text ${r.firstText.toFixed(0)} ms, ended ${r.ended.toFixed(0)} ms,` +
			` longest task ${r.longest.toFixed(0)} ms (${r.longCount} long tasks, ${r.longSum.toFixed(0)} ms),` +
			` ${r.tripsDuring} round trips while rendering, slowest ${r.worstTrip.toFixed(0)} ms`);
		check(r.tripsDuring > 0 || r.ended < 1000,
			`${mib} MiB log: page.evaluate round trips completed while it rendered (${r.tripsDuring})`);
		check(r.got.length === r.wantLength,
			`${mib} MiB log: pre#log holds the whole view (${r.got.length} characters)`,
			`${r.got.length} vs ${r.wantLength}`);
		check(r.got.sha256 === r.wantSha, `${mib} MiB log: pre#log's text is the view's, colours aside`);
		check(!r.got.esc, `${mib} MiB log: no escape bytes show`);
	});
}
await browser.close();
if (bench && rows.length) {
	const base = rows[0];
	console.log('size_MiB  first_ms  longest_ms  total_ms  total/1st   view_bytes');
	for (const r of rows)
		console.log(`${String(r.mib).padStart(8)}  ${f(r.firstText)}  ${f(r.longest).padStart(10)}` +
			`  ${f(r.ended)}  ${(r.ended / base.ended).toFixed(2).padStart(9)}  ${String(r.viewBytes).padStart(11)}`);
}
process.exit(summary());
