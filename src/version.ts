/** leakwatch's version, read at run time from the installed package.json (reports and build_info carry it). */
export const VERSION: string = (require('../package.json') as { version: string }).version;
