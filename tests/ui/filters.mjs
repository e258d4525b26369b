// The dashboard on a paused farm with two projects and tokens:
//  - the project filter is the server's: with more jobs of beta than one
//    page holds, filtering by alpha shows alpha's jobs at once (asked as
//    /v1/jobs?project=alpha), the hash carries the filter, and a link
//    with it opens the filtered view; the repository filter is exact;
//  - on a phone (375 px) the jobs table and a job's targets table show
//    the columns that matter, hide the rest, and the page does not
//    scroll sideways;
//  - #/health with an admin token resumes and pauses the builds (the
//    API's /v1/info says so), with a submit token the buttons are absent.
// tests/ui/run.sh starts this kilnd and sets KILN_ADMIN_TOKEN,
// KILN_SUBMIT_TOKEN, KILN_ALPHA_REPO and KILN_BETA_REPO besides KILN_URL,
// KILN_REPO and KILN_UI_OUT.
import { BASE, WAIT, api, check, fail, flow, launch, ok, shot, summary, watch } from './lib.mjs';

const ADMIN = process.env.KILN_ADMIN_TOKEN, SUBMIT = process.env.KILN_SUBMIT_TOKEN;
const ALPHA = process.env.KILN_ALPHA_REPO, BETA = process.env.KILN_BETA_REPO;
if (!ADMIN || !SUBMIT || !ALPHA || !BETA) {
	console.log('FAIL: KILN_ADMIN_TOKEN, KILN_SUBMIT_TOKEN, KILN_ALPHA_REPO and KILN_BETA_REPO must be set');
	process.exit(1);
}
// More than the dashboard's page (the API's default limit, 50).
const NBETA = 55;

async function submitTo(repo) {
	const r = await api('POST', '/v1/jobs', {
		token: SUBMIT,
		body: { repo, ref: 'main', targets: ['linux/amd64'] },
	});
	if (r.status !== 201)
		throw new Error(`POST /v1/jobs (${repo}) answered ${r.status}: ${r.text}`);
	return r.json.id;
}

// A browser context whose pages hold `token` (sessionStorage kiln.token).
async function contextWith(token, options = {}) {
	const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
	await ctx.addInitScript(t => sessionStorage.setItem('kiln.token', t), token);
	watch(ctx);
	return ctx;
}

// The ids of the rows of table#jobs, as shown.
const shownIds = page => page.$$eval('table#jobs tbody tr[data-job]', rs => rs.map(r => Number(r.dataset.job)));

// Wait until table#jobs shows exactly `ids` (in that order).
async function waitRows(page, ids, what) {
	try {
		await page.waitForFunction(want => {
			const got = [...document.querySelectorAll('table#jobs tbody tr[data-job]')]
				.map(r => Number(r.dataset.job));
			return got.length === want.length && got.every((v, i) => v === want[i]);
		}, ids, { timeout: WAIT });
		ok(what);
	} catch (e) {
		fail(`${what}: shows ${JSON.stringify(await shownIds(page))}, expected ${JSON.stringify(ids)}`);
	}
}

const browser = await launch();
let alpha = [], beta = [];

await flow('filters', async () => {
	// Alpha's jobs first, then more of beta's than a page holds: on the
	// first page of all jobs there is none of alpha's.
	for (let i = 0; i < 2; i++)
		alpha.push(await submitTo(ALPHA));
	for (let i = 0; i < NBETA; i++)
		beta.push(await submitTo(BETA));
	const j = await api('GET', `/v1/jobs/${alpha[0]}`, { token: SUBMIT });
	check(j.json && j.json.project === 'alpha', `job ${alpha[0]} is project alpha's`, j.text.slice(0, 200));

	const ctx = await contextWith(SUBMIT);
	const page = await ctx.newPage();
	const asked = [];
	page.on('request', r => {
		const u = r.url();
		if (u.startsWith(`${BASE}/v1/jobs?`))
			asked.push(u.slice(BASE.length));
	});
	await page.goto(`${BASE}/#/`);
	await page.waitForSelector(`table#jobs tr[data-job="${beta[NBETA - 1]}"]`, { timeout: WAIT });
	check(await page.$(`table#jobs tr[data-job="${alpha[1]}"]`) === null,
		`unfiltered, the first page holds none of alpha's jobs (${NBETA} of beta's are newer)`);

	await page.fill('input#filter-project', 'alpha');
	const newestFirst = [...alpha].reverse();
	await waitRows(page, newestFirst, 'project filter alpha: exactly alpha\'s jobs, newest first');
	check(asked.some(u => /[?&]project=alpha(&|$)/.test(u)), 'the filter is asked of the server (project=alpha)',
		asked.join(' '));
	check(await page.evaluate(() => location.hash) === '#/?project=alpha', 'the hash carries the filter',
		await page.evaluate(() => location.hash));
	check(await page.isHidden('button#more'), 'no button#more: alpha\'s jobs fit one page');
	await shot(page, 'jobs-filter-project');

	// A link with the filter opens the filtered view.
	const linked = await ctx.newPage();
	await linked.goto(`${BASE}/#/?project=alpha`);
	await waitRows(linked, newestFirst, 'a link to #/?project=alpha shows alpha\'s jobs only');
	check(await linked.inputValue('input#filter-project') === 'alpha', 'the link fills input#filter-project');
	await linked.close();

	// The repository filter: exact, and its placeholder says so.
	const ph = await page.getAttribute('input#filter-repo', 'placeholder');
	check(/exact/i.test(ph || ''), 'input#filter-repo\'s placeholder says the URL is exact', ph);
	await page.fill('input#filter-project', '');
	await page.fill('input#filter-repo', ALPHA.slice(0, -2));
	await waitRows(page, [], 'repository filter: a prefix of alpha\'s URL matches nothing');
	await page.fill('input#filter-repo', ALPHA);
	await waitRows(page, newestFirst, 'repository filter: alpha\'s exact URL shows alpha\'s jobs');
	const hash = await page.evaluate(() => location.hash);
	check(new URLSearchParams(hash.replace(/^#\/\?/, '')).get('repo') === ALPHA,
		'the hash carries the repository', hash);

	// State and project together, in the hash in one link.
	await api('POST', `/v1/jobs/${alpha[0]}/cancel`, { token: SUBMIT });
	await page.fill('input#filter-repo', '');
	await page.fill('input#filter-project', 'alpha');
	await page.selectOption('select#filter-state', 'canceled');
	await waitRows(page, [alpha[0]], 'state canceled and project alpha: the canceled one');
	const h2 = await page.evaluate(() => location.hash);
	check(h2 === '#/?state=canceled&project=alpha', 'the hash carries state and project', h2);
	await page.close();
	await ctx.close();
});

await flow('phone layout', async () => {
	const ctx = await contextWith(SUBMIT, { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
	const page = await ctx.newPage();
	const visibleHeads = sel => page.$$eval(`${sel} thead th`, ths => ths
		.filter(th => th.offsetParent !== null && getComputedStyle(th).display !== 'none')
		.map(th => th.textContent.trim()));
	const sideways = () => page.evaluate(() =>
		document.documentElement.scrollWidth - document.documentElement.clientWidth);

	await page.goto(`${BASE}/#/?project=alpha`);
	await page.waitForSelector(`table#jobs tr[data-job="${alpha[1]}"]`, { timeout: WAIT });
	const jh = await visibleHeads('table#jobs');
	check(JSON.stringify(jh) === JSON.stringify(['Job', 'State', 'Repository', 'Ref']),
		'phone: the jobs table shows job, state, repository, ref', JSON.stringify(jh));
	const jcells = await page.$$eval(`table#jobs tr[data-job="${alpha[1]}"] td`,
		tds => tds.filter(td => getComputedStyle(td).display !== 'none').length);
	check(jcells === 4, 'phone: a job\'s row shows 4 cells', jcells);
	const jw = await page.$eval('table#jobs', t => t.getBoundingClientRect().right);
	check(jw <= 375, 'phone: the jobs table fits the screen', jw);
	check(await sideways() <= 0, 'phone: the jobs page does not scroll sideways', await sideways());
	await shot(page, 'phone-jobs');

	await page.goto(`${BASE}/#/jobs/${alpha[1]}`);
	await page.waitForSelector('table#targets tr[data-target="linux/amd64"]', { timeout: WAIT });
	const th = await visibleHeads('table#targets');
	check(JSON.stringify(th) === JSON.stringify(['Target', 'State', 'Duration', 'Log']),
		'phone: the targets table shows target, state, duration, log', JSON.stringify(th));
	check(await page.isVisible('table#targets tr[data-target="linux/amd64"] a.log-link'),
		'phone: the log link is there');
	check(await page.isHidden('table#targets tr[data-target="linux/amd64"] td.toolchain'),
		'phone: the toolchain cell is hidden');
	const tw = await page.$eval('table#targets', t => t.getBoundingClientRect().right);
	check(tw <= 375, 'phone: the targets table fits the screen', tw);
	check(await sideways() <= 0, 'phone: the job page does not scroll sideways', await sideways());
	await shot(page, 'phone-job');

	// The same pages on a wide screen keep every column.
	await page.setViewportSize({ width: 1280, height: 900 });
	check(JSON.stringify(await visibleHeads('table#targets')) === JSON.stringify(['Target', 'State',
		'Attempt', 'Duration', 'Toolchain', 'Cached', 'Reproducible', 'Host', 'Error', 'Log']),
		'wide: the targets table shows every column', JSON.stringify(await visibleHeads('table#targets')));
	await ctx.close();
});

await flow('pause and resume', async () => {
	// Nothing of the above is to be built when the farm resumes.
	for (const id of [...alpha, ...beta])
		await api('POST', `/v1/jobs/${id}/cancel`, { token: SUBMIT });
	const paused = async () => (await api('GET', '/v1/info', { token: ADMIN })).json?.paused;
	check(await paused() === true, 'the farm starts paused (/v1/info)');

	const sctx = await contextWith(SUBMIT);
	const sp = await sctx.newPage();
	await sp.goto(`${BASE}/#/health`);
	await sp.waitForFunction(() => /submit/.test(document.querySelector('#queue-health')?.textContent || ''),
		null, { timeout: WAIT });
	await sp.waitForLoadState('networkidle').catch(() => {});
	check(await sp.$('button#pause') === null && await sp.$('button#resume') === null,
		'submit token: no button#pause or button#resume on #/health');
	await sctx.close();

	const actx = await contextWith(ADMIN);
	const page = await actx.newPage();
	await page.goto(`${BASE}/#/health`);
	await page.waitForSelector('button#resume', { state: 'visible', timeout: WAIT });
	ok('admin token: button#resume on a paused farm');
	check(await page.$('button#pause') === null, 'paused: no button#pause');
	await shot(page, 'health-paused');
	await page.click('button#resume');
	await page.waitForSelector('button#pause', { state: 'visible', timeout: WAIT });
	check(await paused() === false, 'button#resume: /v1/info says not paused');
	await page.click('button#pause');
	await page.waitForSelector('button#resume', { state: 'visible', timeout: WAIT });
	check(await paused() === true, 'button#pause: /v1/info says paused');
	await actx.close();
});

await browser.close();
process.exit(summary());
