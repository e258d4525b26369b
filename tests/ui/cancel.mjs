// The dashboard on a farm with tokens and public_read: reads without a
// token say so (#auth-needed) and show no actions; a read token shows the
// job without actions; a submit token entered in the form shows
// button#cancel, which cancels; then button#retry makes a new job whose
// page opens.  tests/ui/run.sh starts this kilnd and sets KILN_READ_TOKEN
// and KILN_SUBMIT_TOKEN besides KILN_URL, KILN_REPO and KILN_UI_OUT.
import {
	BASE, WAIT, api, check, watch, flow, launch, ok, shot, submit, summary, waitJob, waitTarget,
} from './lib.mjs';

const READ = process.env.KILN_READ_TOKEN, SUBMIT = process.env.KILN_SUBMIT_TOKEN;
if (!READ || !SUBMIT) {
	console.log('FAIL: KILN_READ_TOKEN and KILN_SUBMIT_TOKEN must be set');
	process.exit(1);
}

const browser = await launch();
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
watch(ctx);

async function useToken(page, token) {
	if (await page.$('input#token') === null || !(await page.isVisible('input#token')))
		await page.click('button#token-button');
	await page.fill('input#token', token);
	await page.click('button#token-save');
}

await flow('cancel and retry', async () => {
	const r = await api('GET', '/v1/jobs');
	check(r.status === 401, 'the farm wants a token for reads (GET /v1/jobs answers 401)', r.status);
	// A build that lasts until it is canceled.
	const id = await submit('sleep 300', { token: SUBMIT });
	await waitTarget(id, ['running'], { token: SUBMIT });

	const page = await ctx.newPage();
	page.on('dialog', d => d.accept());	// a confirmation, if the page asks
	// What the actions answered, for the report when one fails.
	page.on('response', r => {
		if (/\/v1\/jobs\/\d+\/(cancel|retry)$/.test(r.url()))
			console.log(`# ${r.request().method()} ${r.url().slice(BASE.length)}: ${r.status()}`);
	});
	await page.goto(`${BASE}/#/`);
	await page.waitForSelector('#auth-needed', { state: 'visible', timeout: WAIT });
	ok('no token: #auth-needed shows on the jobs page');
	check(await page.isVisible('input#token') || await page.$('button#token-button') !== null,
		'no token: the token form is offered');
	await shot(page, 'auth-needed');
	await page.goto(`${BASE}/#/jobs/${id}`);
	await page.waitForSelector('#auth-needed', { state: 'visible', timeout: WAIT });
	check(await page.$('button#cancel') === null, 'no token: no button#cancel on the job page');

	await useToken(page, READ);
	await page.waitForSelector(`section#job[data-job="${id}"]`, { timeout: WAIT });
	ok('read token: the job page shows the job');
	check(await page.evaluate(() => sessionStorage.getItem('kiln.token')) === READ,
		'read token: kept in sessionStorage kiln.token');
	// The scope is known once /v1/info answered: give it that long.
	await page.waitForLoadState('networkidle').catch(() => {});
	const shown = [];
	for (const b of ['cancel', 'retry'])
		if (await page.$(`button#${b}`) !== null)
			shown.push(`button#${b}`);
	check(shown.length === 0, 'read token: no button#cancel or button#retry',
		`${shown.join(', ')} shown (scope from /v1/info: ${JSON.stringify((await api('GET', '/v1/info', { token: READ })).json?.caller)})`);

	if (await page.$('button#token-clear') !== null && !(await page.isVisible('button#token-clear')))
		await page.click('button#token-button');
	await page.click('button#token-clear');
	check(await page.evaluate(() => sessionStorage.getItem('kiln.token')) === null,
		'button#token-clear forgets the token');
	await useToken(page, SUBMIT);
	await page.waitForSelector('button#cancel', { state: 'visible', timeout: WAIT });
	ok('submit token: button#cancel shows for the running job');
	check(await page.$('button#retry') === null, 'submit token: no button#retry before the job ended');
	await shot(page, 'job-cancel');
	await page.click('button#cancel');
	const j = await waitJob(id, { token: SUBMIT });
	check(j.state === 'canceled', `button#cancel: job ${id} is canceled in the API`, j.state);
	await page.waitForFunction(() => {
		const e = document.querySelector('.job-state');
		return e && e.textContent.trim() === 'canceled';
	}, null, { timeout: WAIT });
	ok('the job page says canceled');
	await page.waitForSelector('button#retry', { state: 'visible', timeout: WAIT });
	check(await page.$('button#cancel') === null, 'after the cancel: button#retry, no button#cancel');

	await page.click('button#retry');
	await page.waitForFunction(old => {
		const m = /^#\/jobs\/(\d+)$/.exec(location.hash);
		return m && m[1] !== String(old);
	}, id, { timeout: WAIT });
	const nid = Number(/^#\/jobs\/(\d+)$/.exec(await page.evaluate(() => location.hash))[1]);
	await page.waitForSelector(`section#job[data-job="${nid}"]`, { timeout: WAIT });
	ok(`button#retry: the page went to the new job ${nid}`);
	const n = await api('GET', `/v1/jobs/${nid}`, { token: SUBMIT });
	check(n.status === 200 && n.json.retry_of === id, `job ${nid} is a retry of job ${id} (retry_of)`,
		n.text.slice(0, 200));
	await shot(page, 'job-retried');
	await api('POST', `/v1/jobs/${nid}/cancel`, { token: SUBMIT });
	await page.close();
});

await browser.close();
process.exit(summary());
