// The chat page in a real browser: Debian's chromium, headless, driven by playwright-core.
// Two browser profiles (a desktop window and a phone-sized one) open the page served by
// `wsx chat` on 127.0.0.1, set nicknames, join the same room and exchange messages; markup in a
// message must arrive as text. Then the server is stopped and started again on the same port:
// both pages must show the outage, reconnect by themselves, rejoin the room and chat again.
// Bob then leaves the room from the phone's room panel. Screenshots of both windows are left in
// OUTDIR (chat.png, chat-phone.png, chat-phone-rooms.png) for a human to look at. Exit 77
// (skip) only when chromium or tests/browser/node_modules is missing.
//
// Usage: node chat.js WSX OUTDIR
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const kSkip = 77;
const kChromium = "/usr/bin/chromium";
const kDeadlineMs = 100000;  // the whole test; meson's timeout is a little longer
const kStepMs = 20000;       // one wait inside the test

const [wsx, outdir] = process.argv.slice(2);
if (!wsx || !outdir) {
  console.error("usage: node chat.js WSX OUTDIR");
  process.exit(2);
}
if (!fs.existsSync(kChromium)) {
  console.log(`${kChromium} is not installed (apt-get install chromium)`);
  process.exit(kSkip);
}
let playwright;
try {
  playwright = require(path.join(__dirname, "node_modules", "playwright-core"));
} catch (error) {
  console.log("tests/browser/node_modules is missing (tools/setup runs npm ci there)");
  process.exit(kSkip);
}

let failures = 0;
let passed = 0;
function check(condition, what) {
  if (condition) {
    passed += 1;
  } else {
    failures += 1;
    console.log("FAIL:", what);
  }
}

// `wsx chat` on 127.0.0.1; resolves with the process and its port (from the stderr banner).
function startServer(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      wsx,
      ["chat", "--address", "127.0.0.1", "--port", String(port), "--threads", "2"],
      { stdio: ["ignore", "ignore", "pipe"] });
    let text = "";
    let started = false;
    const timer = setTimeout(() => reject(new Error("wsx chat did not start: " + text)), 10000);
    child.stderr.on("data", (chunk) => {
      text += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (match && !started) {
        started = true;
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    });
    child.on("exit", (code) => reject(new Error(`wsx chat exited (${code}): ${text}`)));
  });
}

function stopServer(server) {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) {
      resolve(server.child.exitCode);
      return;
    }
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 10000);
    server.child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    process.kill(server.child.pid, "SIGTERM");
  });
}

async function openBrowser(profiles, viewport) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wsx-chat-profile-"));
  profiles.push({ dir, context: null });
  const context = await playwright.chromium.launchPersistentContext(dir, {
    executablePath: kChromium,
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: kStepMs,
  });
  profiles[profiles.length - 1].context = context;
  context.setDefaultTimeout(kStepMs);
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => check(false, "no script error on the page: " + error.message));
  return { context, page };
}

async function waitForStatus(page, text) {
  await page.waitForFunction(
    (expected) => document.getElementById("status").textContent.startsWith(expected), text);
}

// The text of the last message from `from` in the open room, once one with `text` is there.
async function waitForMessage(page, from, text) {
  await page.waitForFunction(
    ([sender, body]) =>
      [...document.querySelectorAll("#messages li")].some(
        (li) => li.querySelector(".from")?.textContent === sender &&
                li.querySelector(".text")?.textContent === body),
    [from, text]);
}

async function run(profiles, servers) {
  servers.push(await startServer(0));
  const port = servers[0].port;
  const url = `http://127.0.0.1:${port}/`;

  const desktop = await openBrowser(profiles, { width: 1100, height: 720 });
  const phone = await openBrowser(profiles, { width: 390, height: 760 });
  const alice = desktop.page;
  const bob = phone.page;

  await alice.goto(url);
  await bob.goto(url);
  await waitForStatus(alice, "online");
  await waitForStatus(bob, "online");
  check(true, "both pages connect");

  await alice.fill("#nick", "alice");
  await alice.click("#nick-form button");
  // 40 characters but 80 bytes: the page applies the server's byte limit before joining.
  await alice.fill("#room-input", "\u00e9".repeat(40));
  await alice.press("#room-input", "Enter");
  await alice.waitForSelector("#messages li.error");
  check((await alice.textContent("#messages li.error")).includes("at most 64 bytes"),
        "an over-long room name is refused on the page");
  check((await alice.locator("#joined li[data-topic]").count()) === 0,
        "a refused room is not joined");
  await alice.fill("#room-input", "lobby");
  await alice.press("#room-input", "Enter");
  await alice.waitForSelector('#joined li[data-topic="lobby"].current');

  // The phone layout hides the room panel behind the menu button.
  check(!(await bob.isVisible("#nick")) || (await bob.locator("#side").boundingBox()).x < 0,
        "the room panel is off-screen on a phone until opened");
  await bob.click("#menu");
  await bob.fill("#nick", "bob");
  await bob.click("#nick-form button");
  await bob.fill("#room-input", "lobby");
  await bob.click("#join");
  await bob.waitForSelector('#joined li[data-topic="lobby"].current');
  await alice.waitForFunction(() =>
    document.querySelector('#rooms li[data-topic="lobby"] .count')?.textContent === "2");
  check(true, "alice's room list shows both members of lobby");

  const hello = "Hello bob! <b>not bold</b> <img src=x onerror=alert(1)> \u{1F389}";
  await alice.fill("#message-input", hello);
  await alice.press("#message-input", "Enter");
  await waitForMessage(bob, "alice", hello);
  await waitForMessage(alice, "alice", hello);
  check(true, "bob sees alice's message, and so does alice");
  check((await bob.locator("#messages b, #messages img").count()) === 0,
        "markup in a message is shown as text, never as HTML");
  check((await alice.inputValue("#message-input")) === "", "the composer clears after sending");
  const time = await bob.locator("#messages li time").first().textContent();
  check(/\d{1,2}:\d{2}/.test(time || ""), `a message shows its time: ${time}`);

  await bob.fill("#message-input", "Hi alice \u00e9\u00e8 \u6771\u4eac");
  await bob.click("#send");
  await waitForMessage(alice, "bob", "Hi alice \u00e9\u00e8 \u6771\u4eac");
  check(true, "alice sees bob's reply");

  fs.mkdirSync(outdir, { recursive: true });
  await alice.screenshot({ path: path.join(outdir, "chat.png") });
  await bob.screenshot({ path: path.join(outdir, "chat-phone.png") });

  // The server goes away: both pages say so, then come back by themselves.
  check((await stopServer(servers[0])) === 0, "wsx chat stops cleanly on SIGTERM");
  await waitForStatus(alice, "offline");
  await waitForStatus(bob, "offline");
  check((await alice.isDisabled("#send")), "sending is disabled while offline");
  servers.push(await startServer(port));
  await waitForStatus(alice, "online");
  await waitForStatus(bob, "online");
  check(true, "both pages reconnect after the server restarts");
  await alice.fill("#message-input", "still here after the restart");
  await alice.press("#message-input", "Enter");
  await waitForMessage(bob, "alice", "still here after the restart");
  check(true, "the pages rejoin their room and nicknames after reconnecting");

  // Leaving: bob opens the room panel on his phone and leaves; alice's list counts one member.
  await bob.click("#menu");
  await bob.waitForFunction(() =>
    document.querySelector('#rooms li[data-topic="lobby"] .count')?.textContent === "2");
  await bob.screenshot({ path: path.join(outdir, "chat-phone-rooms.png") });
  await bob.click('#joined li[data-topic="lobby"] .leave');
  await alice.waitForFunction(() =>
    document.querySelector('#rooms li[data-topic="lobby"] .count')?.textContent === "1");
  check((await bob.locator("#joined li[data-topic]").count()) === 0, "bob has left the room");
  check(await bob.isDisabled("#send"), "with no room open there is nothing to send to");
  await alice.fill("#message-input", "bob is gone");
  await alice.press("#message-input", "Enter");
  await waitForMessage(alice, "alice", "bob is gone");
  check((await bob.locator("#messages li").count()) === 0, "a room left delivers nothing");

}

async function main() {
  const profiles = [];
  const servers = [];
  const deadline = setTimeout(() => {
    console.log(`FAIL: the browser test did not finish within ${kDeadlineMs} ms`);
    for (const server of servers) {
      if (server.child.exitCode === null) process.kill(server.child.pid, "SIGKILL");
    }
    process.exit(1);
  }, kDeadlineMs);
  try {
    await run(profiles, servers);
  } catch (error) {
    check(false, "the scenario ran to its end: " + (error.stack || error));
  } finally {
    for (const profile of profiles) {
      if (profile.context) await profile.context.close().catch(() => {});
      fs.rmSync(profile.dir, { recursive: true, force: true });
    }
    for (const server of servers) await stopServer(server);
    clearTimeout(deadline);
  }
  console.log(`browser chat: ${passed} passed, ${failures} failed` +
              ` (screenshots in ${outdir})`);
  process.exit(failures === 0 ? 0 : 1);
}

main();
