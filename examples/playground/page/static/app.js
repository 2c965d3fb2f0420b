// The playground page: no framework, no build step. It posts the agent's
// payload to /run and shows the answer, or the error as a sentence.
"use strict";

(() => {
	const $ = (id) => document.getElementById(id);
	const form = $("playground");
	const picker = $("language");
	const code = $("code");
	const runButton = $("run");
	const cases = $("cases");

	const languages = new Map(JSON.parse($("languages").textContent || "[]").map((l) => [l.name, l]));
	// The prefixes of an answer's error with which the agent reports the
	// limit that stopped the program, and the limit's error code.
	const agentLimits = Object.entries(JSON.parse($("agent-limits").textContent || "{}"));
	// What the user typed, per language, so that switching back keeps it.
	const drafts = new Map();
	let fileName = "";
	let running = false;
	let answers = 0;

	// Sentences for the error codes of POST /run (api_docs/errors.md); the
	// server's own message follows as the detail.
	const problems = {
		"limits.execution_time": "Your program ran longer than the time limit and was stopped.",
		"limits.read.size": "Your program wrote more output than the limit allows and was stopped.",
		"limits.memory": "Your program used more memory than the limit allows and was stopped.",
		"runner.busy": "Every runner is busy right now. Try again in a few seconds.",
		"runner.closed": "The playground is shutting down. Reload the page in a moment.",
		"docker.container.create": "The image for this language is missing on the Docker daemon. Build it with examples/images/build.sh and restart the playground.",
		"image.not_allowed": "The playground does not offer this language. Reload the page to see the languages it has.",
		"docker.unixsocket": "The playground cannot reach the Docker daemon. Is dockerd running?",
		"request.too_large": "The program and its input are too large for the playground.",
		"request.parse": "The playground could not read the request.",
		"request.invalid": "The playground could not read the request.",
		"run.canceled": "The run was cancelled.",
	};

	function showLanguage(name) {
		const lang = languages.get(name);
		if (!lang) return;
		const file = (lang.hello.files || [])[0] || { name: "", content: "" };
		fileName = file.name;
		$("filename").textContent = file.name;
		code.value = drafts.has(name) ? drafts.get(name) : file.content;
	}

	picker.addEventListener("change", () => showLanguage(picker.value));
	code.addEventListener("input", () => drafts.set(picker.value, code.value));

	// Tab indents, unless Esc came just before: then it moves on, so that
	// the editor is no keyboard trap.
	let escaped = false;
	code.addEventListener("keydown", (e) => {
		if (e.key === "Escape") {
			escaped = true;
			return;
		}
		if (e.key === "Tab" && !escaped && !e.ctrlKey && !e.altKey && !e.metaKey) {
			e.preventDefault();
			indent(e.shiftKey);
		}
		escaped = false;
	});

	function indent(outdent) {
		const unit = fileName.endsWith(".go") ? "\t" : "    ";
		const { selectionStart: start, selectionEnd: end, value } = code;
		if (!outdent && start === end) {
			code.setRangeText(unit, start, end, "end");
		} else {
			const lineStart = value.lastIndexOf("\n", start - 1) + 1;
			const lines = value.slice(lineStart, end).split("\n");
			const changed = lines.map((l) => outdent ? l.replace(/^(\t| {1,4})/, "") : unit + l).join("\n");
			code.setRangeText(changed, lineStart, end, "select");
		}
		drafts.set(picker.value, code.value);
	}

	// Test cases: one stdin box runs the program once; more send "runs",
	// one run per box, in one container.
	function addCase(value = "") {
		const n = cases.children.length + 1;
		const box = document.createElement("div");
		box.className = "case";
		const head = document.createElement("div");
		head.className = "case-head";
		const label = document.createElement("label");
		const area = document.createElement("textarea");
		area.className = "stdin";
		area.rows = 3;
		area.spellcheck = false;
		area.value = value;
		area.id = "stdin-" + n;
		label.htmlFor = area.id;
		head.append(label);
		box.append(head, area);
		if (n > 1) {
			const remove = document.createElement("button");
			remove.type = "button";
			remove.className = "secondary remove";
			remove.textContent = "Remove";
			remove.addEventListener("click", () => {
				box.remove();
				relabel();
				$("add-case").focus();
			});
			head.append(remove);
		}
		cases.append(box);
		relabel();
		return area;
	}

	function relabel() {
		const boxes = [...cases.children];
		boxes.forEach((box, i) => {
			const label = box.querySelector("label");
			label.textContent = boxes.length === 1 ? "Stdin" : `Test case ${i + 1}: stdin`;
			const remove = box.querySelector(".remove");
			if (remove) remove.setAttribute("aria-label", `Remove test case ${i + 1}`);
		});
	}

	$("add-case").addEventListener("click", () => addCase().focus());

	document.addEventListener("keydown", (e) => {
		if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
			e.preventDefault();
			form.requestSubmit();
		}
	});

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		run();
	});

	async function run() {
		if (running || !languages.has(picker.value)) return;
		const stdins = [...cases.querySelectorAll(".stdin")].map((a) => a.value);
		const payload = { language: picker.value, files: [{ name: fileName, content: code.value }] };
		if (stdins.length > 1) {
			payload.runs = stdins.map((stdin) => ({ stdin }));
		} else {
			payload.stdin = stdins[0] || "";
		}
		setRunning(true);
		const started = performance.now();
		let resp, answer;
		try {
			resp = await fetch("run", {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify(payload),
			});
			answer = await resp.json();
		} catch (err) {
			setRunning(false);
			showProblem("The playground did not answer. Is it still running?", String(err));
			return;
		}
		setRunning(false);
		const took = performance.now() - started;
		if (!resp.ok) {
			showProblem(problems[answer.error] || "The run failed.", answer.message || "", answer.error);
			return;
		}
		showAnswer(answer, took, stdins);
	}

	function setRunning(on) {
		running = on;
		runButton.disabled = on;
		runButton.textContent = on ? "Running…" : "Run";
		form.setAttribute("aria-busy", String(on));
		if (on) {
			clear();
			$("status").textContent = `Running ${picker.value}…`;
		}
	}

	function clear() {
		$("problem").hidden = true;
		$("facts").hidden = true;
		$("facts").replaceChildren();
		$("streams").replaceChildren();
		$("runs").hidden = true;
		$("runs").querySelector("tbody").replaceChildren();
		$("status").className = "status";
	}

	function showProblem(title, detail, code) {
		clear();
		$("status").textContent = "";
		$("problem-title").textContent = title;
		$("problem-detail").textContent = detail + (code ? ` (${code})` : "");
		$("problem").hidden = false;
		done();
	}

	// done counts the answers shown, in data-answers, for scripts that drive
	// the page.
	function done() {
		$("answer").dataset.answers = String(++answers);
	}

	function showAnswer(a, took, stdins) {
		clear();
		const runs = Array.isArray(a.runs) ? a.runs : null;
		const failed = a.error || (runs && runs.some((r) => r.error));
		$("status").className = "status " + (failed ? "failed" : "ok");
		if (runs) {
			const n = runs.filter((r) => !r.error).length;
			$("status").textContent = a.error ? "The build failed." : `${n} of ${runs.length} test cases ran without an error.`;
		} else {
			const limit = agentLimits.find(([prefix]) => (a.error || "").startsWith(prefix));
			$("status").textContent = limit ? problems[limit[1]] : a.error ? "The program failed." : "The program ran.";
		}

		const facts = [];
		if (typeof a.duration === "number") facts.push([runs ? "build" : "duration", nanos(a.duration)]);
		if (a.usage) {
			if (typeof a.usage.cpu_time === "number") facts.push(["CPU time", nanos(a.usage.cpu_time)]);
			if (typeof a.usage.memory === "number") facts.push(["memory", bytes(a.usage.memory)]);
		}
		facts.push(["answered in", Math.round(took) + " ms"]);
		const dl = $("facts");
		for (const [k, v] of facts) {
			const pair = document.createElement("div");
			const dt = document.createElement("dt");
			const dd = document.createElement("dd");
			dt.textContent = k;
			dd.textContent = v;
			pair.append(dt, dd);
			dl.append(pair);
		}
		dl.hidden = false;

		const build = runs ? "build " : "";
		stream(build + "stdout", a.stdout, !runs);
		stream(build + "stderr", a.stderr, false);
		stream("error", a.error, false, "error");

		if (runs) {
			const body = $("runs").querySelector("tbody");
			runs.forEach((r, i) => {
				const tr = document.createElement("tr");
				if (r.error) tr.className = "failed";
				const u = r.usage || {};
				const cells = [String(i + 1), stdins[i] ?? "", r.stdout, r.stderr, r.error,
					typeof r.duration === "number" ? nanos(r.duration) : "",
					typeof u.cpu_time === "number" ? nanos(u.cpu_time) : "",
					typeof u.memory === "number" ? bytes(u.memory) : ""];
				cells.forEach((c, j) => {
					const td = document.createElement(j === 0 ? "th" : "td");
					if (j === 0) td.scope = "row";
					if (j >= 1 && j <= 4) {
						if (c) {
							const pre = document.createElement("pre");
							pre.textContent = c;
							td.append(pre);
						}
					} else {
						td.textContent = c;
					}
					tr.append(td);
				});
				body.append(tr);
			});
			$("runs").hidden = false;
		}
		done();
	}

	// stream shows one output stream; an empty one only when always is set.
	function stream(name, text, always, cls) {
		if (!text && !always) return;
		const box = document.createElement("div");
		box.className = "stream " + (cls || name.replace(/.* /, ""));
		const h = document.createElement("h3");
		h.textContent = name;
		const pre = document.createElement("pre");
		pre.tabIndex = 0;
		pre.setAttribute("aria-label", name);
		pre.textContent = text || "(nothing)";
		if (!text) pre.className = "empty";
		box.append(h, pre);
		$("streams").append(box);
	}

	function nanos(ns) {
		const ms = ns / 1e6;
		if (ms < 1) return `${Math.round(ns / 1e3)} µs`;
		if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
		return `${(ms / 1000).toFixed(2)} s`;
	}

	function bytes(n) {
		if (n < 1024) return `${n} B`;
		if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
		return `${(n / (1 << 20)).toFixed(1)} MiB`;
	}

	addCase();
	if (languages.has("python")) picker.value = "python";
	showLanguage(picker.value);
	code.focus();
})();
