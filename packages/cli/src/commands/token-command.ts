import { Command, Option } from 'commander';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';

type Opts = CloudCallOptions & { json?: boolean; role?: string };

const ROLES = ['viewer', 'operator', 'admin'] as const;

/** `linesight token`: named API tokens with roles (create, list, revoke; admin only). */
export function tokenCommand(): Command {
  const token = new Command('token').description(
    'named API tokens with a role (viewer, operator, admin): each change they make is recorded with their actor',
  );
  withCloudCall(
    token
      .command('create')
      .description('create a token for an actor (admin only); the token is printed only this once')
      .argument('<actor>', 'who the token is for: 1-64 of a-z 0-9 _ . @ -')
      .addOption(
        new Option(
          '--role <role>',
          'viewer: reads; operator: also models, rollouts, labels; admin: also devices, keys, tokens',
        )
          .choices(ROLES)
          .default('operator'),
      )
      .option('--json', 'print JSON'),
  ).action(async (actor: string, opts: Opts) => {
    const created = await (
      await cloudClient(opts)
    ).api.createToken(actor, opts.role as (typeof ROLES)[number]);
    console.log(
      opts.json ? JSON.stringify(created) : `${created.actor} (${created.role}): ${created.token}`,
    );
  });
  withCloudCall(
    token
      .command('list')
      .description('list named tokens (never the tokens)')
      .option('--json', 'print JSON'),
  ).action(async (opts: Opts) => {
    const list = await (await cloudClient(opts)).api.listTokens();
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no named tokens');
    else
      for (const t of list)
        console.log(`${t.actor}  ${t.role}  created ${t.createdAt} by ${t.createdBy}`);
  });
  withCloudCall(
    token
      .command('revoke')
      .description("revoke an actor's token (admin only); it stops working at once")
      .argument('<actor>', 'whose token'),
  ).action(async (actor: string, opts: Opts) => {
    await (await cloudClient(opts)).api.revokeToken(actor);
    console.log(`revoked the token of ${actor}`);
  });
  return token;
}
