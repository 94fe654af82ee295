import type { Log } from '../observability/telemetry.js';
import type { Queue, TaskStore } from '../ports.js';
import type { RuleRuntime } from '../rules/rule-runtime.js';
import type { PlanJob } from './frontdoor.js';
import { planArtifactEvent, planExecution, taskKey, type TaskMessage } from './planner.js';

/**
 * Runs one planning job: a webhook's artifact (one task; for a Harbor source, with all the
 * artifact's tags, since Harbor sends only the first), or a rule's full plan, resumed after a
 * crash without recording any artifact twice. Closes the planning in the store either way.
 */
export async function runPlanJob(
  job: PlanJob,
  deps: { store: TaskStore; taskQueue: Queue<TaskMessage>; runtime: (rule: string) => Promise<RuleRuntime>; log: Log; signal?: AbortSignal | undefined },
): Promise<void> {
  const rt = await deps.runtime(job.rule);
  const { store } = deps;
  if (job.event) {
    let tags = job.event.tag ? [job.event.tag] : [];
    if (job.event.type === 'PUSH_ARTIFACT' && rt.sourceHarbor) {
      tags = await rt.sourceHarbor.artifactTags(job.event.repository, job.event.digest).catch(() => tags);
    }
    const planned = planArtifactEvent(
      rt.rule,
      { operation: job.event.type === 'DELETE_ARTIFACT' ? 'deletion' : 'copy', repository: job.event.repository, digest: job.event.digest, tags },
      { source: rt.source.name, destination: rt.destination.name, destinationType: rt.destination.type },
    );
    if ('excluded' in planned) {
      await store.finishPlanning(job.executionId, 0);
      deps.log.info('event left out by the rule', { execution: job.executionId, rule: job.rule, reason: planned.excluded });
      return;
    }
    const [task] = await store.addTasks(job.executionId, 1, [planned.task]);
    await store.finishPlanning(job.executionId, 1);
    if (task?.status === 'Pending') await deps.taskQueue.send([{ executionId: job.executionId, taskId: task.id }]);
    return;
  }
  let skip: Set<string> | undefined;
  let firstId = 1;
  if (job.resume) {
    skip = new Set();
    let cursor: string | undefined;
    do {
      const page = await store.listTasks(job.executionId, { limit: 1000, cursor });
      for (const t of page.items) {
        skip.add(taskKey({ ...t.source, digest: t.digest }));
        firstId = Math.max(firstId, t.id + 1);
        if (t.status === 'Pending' || t.status === 'Running') {
          if (t.status === 'Running') await store.transitionTask(job.executionId, t.id, ['Running'], 'Pending', { statusText: 'requeued after a restart' });
          await deps.taskQueue.send([{ executionId: job.executionId, taskId: t.id }]);
        }
      }
      cursor = page.cursor;
    } while (cursor);
  }
  const summary = await planExecution(job.executionId, rt, { store, taskQueue: deps.taskQueue }, { signal: deps.signal, skip, firstId });
  await store.finishPlanning(job.executionId, firstId - 1 + summary.total);
  deps.log.info('execution planned', { execution: job.executionId, rule: job.rule, ...summary });
}
