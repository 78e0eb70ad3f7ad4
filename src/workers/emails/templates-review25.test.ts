import { describe, expect, it } from 'vitest';
import { type TemplateInput, templates } from './templates.js';

/**
 * Review 25: these mails reach addresses nobody confirmed (a registrant may type anyone's), and a
 * username is the registrant's text — `claim-prize.example` is legal and mail clients link it. Handed
 * one all the same (as the worker did before), a template leaves it out.
 */
describe('account mails', () => {
  it.each(Object.keys(templates) as (keyof typeof templates)[])('%s carries no username', (name) => {
    const input = { publicUrl: 'https://gigwire.example', token: 'token-1', username: 'claim-prize.example' };
    const mail = templates[name](input as TemplateInput);
    for (const part of [mail.subject, mail.text, mail.html]) expect(part).not.toContain('claim-prize');
    expect(mail.text.startsWith('Hello,')).toBe(true);
  });
});
