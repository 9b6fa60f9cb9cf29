/**
 * How an administrator's or operator's action is recorded: an `admin_action` security event
 * naming the actor (the admin's id, or `cli` for the command line) and the target.
 */
import type { RequestContext } from '../../core/request-context.js';
import type { SecurityEvents } from '../security/events.js';

/** How the action came: an admin over HTTP (`api`) or an operator at the command line (`cli`). */
export const viaOf = (context: RequestContext): string => context.via ?? 'api';

/** Who acted, as events name them (`by`): the admin's id, else how the action came. */
export const actorLabel = (context: RequestContext): string => context.actor?.userId ?? viaOf(context);

export function recordAdminAction(
  events: SecurityEvents,
  context: RequestContext,
  action: string,
  targetId: string | null,
  details: Record<string, unknown> = {},
): void {
  events.emit({
    type: 'admin_action',
    context,
    userId: context.actor?.userId ?? null,
    message: `admin action: ${action}`,
    details: { action, target_user_id: targetId, via: viaOf(context), ...details },
  });
}
