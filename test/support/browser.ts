// A real browser for the console's tests: Debian's chromium (never a downloaded build) driven by
// playwright-core, axe-core's checks run inside the page, screenshots in a git-ignored folder.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (`apt-get install -y chromium`). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go (git-ignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../../test-output/screenshots/', import.meta.url));

/** Starts headless chromium; fails with the install command when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (the tests use Debian's, never a downloaded browser)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** One rule axe found broken, with the elements. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/**
 * axe-core's checks (WCAG 2.x A and AA and its best practices) on the page as it is now. Injected
 * through the DevTools protocol, which the page's CSP does not govern: the page itself still runs
 * no inline script.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(axeSource);
  const result = (await page.evaluate('axe.run(document, { resultTypes: ["violations"] })')) as { violations: AxeViolation[] };
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
}

/** Saves a screenshot as SCREENSHOTS/NAME.png (the viewport, or the `clip` of it). */
export async function screenshot(page: Page, name: string, clip?: { x: number; y: number; width: number; height: number }): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, ...(clip ? { clip } : {}) });
  return path;
}
