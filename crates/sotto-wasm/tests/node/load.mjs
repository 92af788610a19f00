// Loads an independent instance of the committed browser package (web/pkg) in Node. Each call
// with another name yields a separate module instance — a separate "page" with its own registry.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const pkgDir = process.env.SOTTO_WASM_PKG ?? fileURLToPath(new URL("../../../../web/pkg/", import.meta.url));

export async function loadPage(name) {
    const glue = await import(`file://${pkgDir}/sotto.js?page=${encodeURIComponent(name)}`);
    glue.initSync({ module: readFileSync(`${pkgDir}/sotto_bg.wasm`) });
    return glue;
}

/** Delivers packets from one page to another until both are quiet; returns all events seen. */
export function pump(pages, from, to, packets, room = "room-1") {
    const events = { [from]: [], [to]: [] };
    let queue = packets.map((p) => [to, p]);
    for (let round = 0; queue.length > 0; round++) {
        if (round > 50) throw new Error("did not settle");
        const next = [];
        for (const [target, packet] of queue) {
            const other = target === from ? to : from;
            const step = pages[target].otrReceive(room, packet);
            events[target].push(...step.events);
            for (const p of step.packets) next.push([other, p]);
        }
        queue = next;
    }
    return events;
}
