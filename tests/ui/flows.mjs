// The dashboard on a farm without tokens, in a real chromium: a job
// appears and succeeds live, a log is followed to its end, an artifact
// downloads with the quoted sha256, ANSI colours render as spans.
// Run by tests/ui/run.sh, which starts kilnd and sets KILN_URL,
// KILN_REPO and KILN_UI_OUT.
import { readFileSync } from 'node:fs';
import {
	BASE, WAIT, api, check, watch, fail, flow, greenish, launch, ok, reddish, rgb,
	sha256, shot, submit, summary, waitJob, waitTarget,
} from './lib.mjs';

// What a person sees of a log: the view without its colour sequences.
const SGR = /\x1b\[[0-9;]*m/g;

const browser = await launch();
const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
watch(ctx);
let doneId = null;

// --- 1. a job appears without a reload and turns succeeded ----------------
await flow('jobs page', async () => {
	const list = await ctx.newPage();
	await list.goto(`${BASE}/#/`);
	await list.waitForSelector('table#jobs', { timeout: WAIT });
	ok('jobs page: table#jobs shows');
	// Submitting before the event stream is up would test the first
	// fetch, not the events.
	// (A failure here is told and the flow goes on: what follows shows
	// whether the page updates some other way.)
	const live = await list.waitForFunction(() => {
		const e = document.querySelector('#live');
		return e && e.textContent.trim() === 'live';
	}, null, { timeout: WAIT }).then(() => true, () => false);
	check(live, 'jobs page: #live says live (the event stream is connected)');
	// A reload would drop this.
	await list.evaluate(() => { window.kilnNoReload = true; });
	// The build lasts long enough for both pages to see it unfinished.
	const id = await submit('sleep 8; seq 1 20000 > /out/numbers.txt');
	const job = await ctx.newPage();
	await job.goto(`${BASE}/#/jobs/${id}`);
	const row = `table#jobs tr[data-job="${id}"]`;
	await list.waitForSelector(row, { timeout: WAIT });
	ok(`jobs page: job ${id} submitted through the API appears`);

	// The job page, opened while the job is young, turns green by itself.
	await job.waitForSelector(`section#job[data-job="${id}"]`, { timeout: WAIT });
	const tr = 'table#targets tr[data-target="linux/amd64"]';
	await job.waitForSelector(tr, { timeout: WAIT });
	await job.evaluate(() => { window.kilnNoReload = true; });
	const early = (await job.textContent(`${tr} .state`)).trim();
	check(early !== 'succeeded', `job page: opened before the target ended (it says '${early}')`);

	await list.waitForFunction(sel => {
		const c = document.querySelector(sel);
		return c && c.textContent.trim() === 'succeeded';
	}, `${row} td.state`, { timeout: WAIT });
	check(await list.evaluate(() => window.kilnNoReload === true),
		`jobs page: job ${id}'s row became succeeded without a reload`);
	const api1 = await waitJob(id);
	check(api1.state === 'succeeded', `job ${id} succeeded in the API`, api1.state);
	await shot(list, 'jobs');

	await job.waitForSelector(`${tr}.state-succeeded`, { timeout: WAIT });
	check(await job.evaluate(() => window.kilnNoReload === true),
		'job page: the target row turned state-succeeded without a reload');
	check((await job.textContent(`${tr} .state`)).trim() === 'succeeded',
		'job page: the target\'s .state says succeeded');
	await job.waitForFunction(() => {
		const e = document.querySelector('.job-state');
		return e && e.textContent.trim() === 'succeeded';
	}, null, { timeout: WAIT });
	ok('job page: .job-state says succeeded');
	const colours = await job.evaluate(sel => {
		const row = document.querySelector(sel), cell = row.querySelector('.state');
		const cs = e => getComputedStyle(e);
		return [cs(row).backgroundColor, cs(cell).backgroundColor, cs(cell).color,
			...[...row.cells].map(c => cs(c).backgroundColor)];
	}, tr);
	check(colours.some(c => greenish(rgb(c))),
		'job page: the succeeded row renders green (computed colour)', colours.join(' / '));
	for (const cls of ['attempt', 'duration', 'toolchain', 'cached', 'reproducible', 'error'])
		check(await job.$(`${tr} .${cls}`) !== null, `job page: the target row has .${cls}`);
	const logHref = await job.getAttribute(`${tr} a.log-link`, 'href');
	check(logHref && logHref.includes(`#/jobs/${id}/log/linux_amd64`),
		'job page: a.log-link leads to the log page', logHref);
	await job.waitForSelector('table#artifacts', { timeout: WAIT });
	await shot(job, 'job');
	doneId = id;

	// The list on a phone.
	const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
	await phone.goto(`${BASE}/#/`);
	await phone.waitForSelector(row, { timeout: WAIT });
	const overflow = await phone.evaluate(() =>
		document.documentElement.scrollWidth - window.innerWidth);
	console.log(`# phone 390x844: page wider than the screen by ${overflow}px`);
	await shot(phone, 'jobs-phone');
	await phone.close();
	await list.close();
	await job.close();
});

// --- 3. an artifact downloads with the sha256 the page and SHA256SUMS quote ---
await flow('artifact download', async () => {
	if (doneId === null)
		throw new Error('no succeeded job from the jobs flow to download from');
	const id = doneId;
	const page = await ctx.newPage();
	await page.goto(`${BASE}/#/jobs/${id}`);
	const row = 'table#artifacts tr[data-file$="/numbers.txt"]';
	await page.waitForSelector(row, { timeout: WAIT });
	const dataFile = await page.getAttribute(row, 'data-file');
	const href = await page.getAttribute(`${row} a.download`, 'href');
	check(href && href.endsWith(`/v1/jobs/${id}/artifacts/linux_amd64/numbers.txt`),
		`artifact row ${dataFile}: a.download points at the API`, href);
	const shown = (await page.textContent(`${row} .sha256`)).trim();
	const [dl] = await Promise.all([
		page.waitForEvent('download', { timeout: WAIT }),
		page.click(`${row} a.download`),
	]);
	const failure = await dl.failure();
	if (failure)
		throw new Error(`the download failed: ${failure}`);
	const got = sha256(readFileSync(await dl.path()));
	check(got === shown, `downloaded ${dl.suggestedFilename()}: sha256 equals the .sha256 cell`,
		`${got} vs '${shown}'`);
	const sums = await api('GET', `/v1/jobs/${id}/SHA256SUMS`);
	const line = sums.text.split('\n').find(l => /(^|[ */])numbers\.txt$/.test(l)) || '';
	check(line.split(/\s+/)[0] === got, 'downloaded file: sha256 equals its SHA256SUMS line',
		`'${line}' vs ${got}`);
	const want = sha256(Buffer.from(Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('')));
	check(got === want, 'downloaded file: the bytes the recipe wrote (seq 1 20000)');
	for (const sel of ['a#sums', 'a#minisig', 'a#provenance', 'pre#verify-commands'])
		check(await page.$(sel) !== null, `job page: ${sel} present`);
	const cmds = (await page.textContent('pre#verify-commands')) || '';
	check(cmds.includes('sha256sum -c') && cmds.includes('minisign -Vm SHA256SUMS -p kiln.pub'),
		'job page: the verify commands are the exact ones', cmds);
	await page.close();
});

// --- 2. a live log followed to its end --------------------------------------
await flow('live log', async () => {
	const id = await submit('for i in $(seq 1 25); do echo "line $i of the slow log"; sleep 0.3; done');
	await waitTarget(id, ['running', 'succeeded', 'failed']);
	const page = await ctx.newPage();
	await page.goto(`${BASE}/#/jobs/${id}/log/linux_amd64`);
	await page.waitForSelector('pre#log', { timeout: WAIT });
	const first = await page.waitForFunction(() => {
		const e = document.querySelector('#log-status');
		const t = e && e.textContent.trim();
		return (t === 'following' || t === 'ended') && t;
	}, null, { timeout: WAIT }).then(h => h.jsonValue());
	check(first === 'following', 'log page: #log-status says following while the build runs', first);
	const raw = await page.getAttribute('a#raw-log', 'href');
	check(raw && raw.endsWith(`/v1/jobs/${id}/targets/linux_amd64/log?raw=1`),
		'log page: a#raw-log is the raw log', raw);
	await page.waitForFunction(() => {
		const e = document.querySelector('#log-status');
		return e && e.textContent.trim() === 'ended';
	}, null, { timeout: WAIT });
	ok('log page: #log-status says ended at the end');
	const view = (await api('GET', `/v1/jobs/${id}/targets/linux_amd64/log`)).text;
	const text = await page.textContent('pre#log');
	check(text === view.replace(SGR, ''),
		`log page: pre#log is the log view exactly (${text.length} of ${view.length} characters)`,
		`first difference at ${[...text].findIndex((c, i) => c !== view[i])}`);
	check(/line 25 of the slow log/.test(text), 'log page: the last line arrived');
	await shot(page, 'log');
	await page.close();
});

// --- 6. ANSI colours as spans, no escape bytes -------------------------------
await flow('ansi', async () => {
	const id = await submit("printf 'plain\\n\\033[31mred words\\033[0m after\\n\\033[1;32mbold green\\033[0m\\n'");
	await waitJob(id);
	const page = await ctx.newPage();
	await page.goto(`${BASE}/#/jobs/${id}/log/linux_amd64`);
	await page.waitForFunction(() => {
		const e = document.querySelector('#log-status');
		return e && e.textContent.trim() === 'ended';
	}, null, { timeout: WAIT });
	const red = await page.evaluate(() => {
		for (const s of document.querySelectorAll('pre#log span'))
			if (s.textContent === 'red words')
				return { cls: s.className, color: getComputedStyle(s).color };
		return null;
	});
	check(red !== null && red.cls !== '', 'ansi: "red words" is a span of its own with a class',
		JSON.stringify(red));
	check(red !== null && reddish(rgb(red.color)), 'ansi: the span renders red',
		red && red.color);
	const green = await page.evaluate(() => {
		const s = [...document.querySelectorAll('pre#log span')].find(e => e.textContent === 'bold green');
		return s ? { cls: s.className, color: getComputedStyle(s).color, weight: getComputedStyle(s).fontWeight } : null;
	});
	check(green !== null && greenish(rgb(green.color)), 'ansi: "bold green" renders green',
		JSON.stringify(green));
	const text = await page.textContent('pre#log');
	// (The log's "[kiln] $ ..." line quotes the command, backslashes and
	// all: only the ESC byte itself must not show.)
	check(!/[\x1b\x9b]/.test(text), 'ansi: no escape bytes show');
	check(text.includes('red words after\n'), 'ansi: the text around the colours is kept');
	await shot(page, 'log-ansi');
	await page.close();
});

// --- the other pages: they show their table, for the screenshots -----------
await flow('other pages', async () => {
	const page = await ctx.newPage();
	for (const [route, sel, name] of [['#/hosts', 'table#hosts', 'hosts'],
	    ['#/projects', 'table#projects', 'projects'], ['#/health', '#queue-health', 'health']]) {
		await page.goto(`${BASE}/${route}`);
		const shown = await page.waitForSelector(sel, { timeout: WAIT }).then(() => true, () => false);
		check(shown, `${route}: ${sel} shows`);
		await shot(page, name);
	}
	// A farm without tokens makes every caller an admin: no pause button
	// without a token held, as the contract has it.
	check(await page.$('button#pause') === null && await page.$('button#resume') === null,
		'#/health: no button#pause or button#resume without a token');
	await page.close();
});

await browser.close();
process.exit(summary());
