/**
 * The hub's rule for device and module ids: 1-128 ASCII letters, digits and `- . % _ * ? ! ( ) , : = @ $ '`. The
 * scripts' config.ts holds the same rule for readers who copy it alone; test/unit/identity-id.test.ts proves they agree.
 */
export const IDENTITY_ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
